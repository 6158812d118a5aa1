package jfr

import (
	"math/rand/v2"
	"testing"
)

// TestVarintsAt checks the windowed varint decoder against the plain byte
// loop on random sequences mixing every length, 9-byte values whose last
// byte has its high bit set, and padded encodings (async-profiler writes
// sizes as 5-byte varints with leading zero groups).
func TestVarintsAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 20000; iter++ {
		n := 1 + rng.IntN(8)
		var b []byte
		want := make([]uint64, n)
		for i := range want {
			var v uint64
			switch rng.IntN(4) {
			case 0:
				v = rng.Uint64() >> rng.UintN(64)
			case 1:
				v = rng.Uint64() // often 9 bytes
			case 2:
				v = rng.Uint64() & 0xffff
			default:
				v = 1<<48 + rng.Uint64()&(1<<40-1) // 7-byte timestamps
			}
			want[i] = v
			pad := rng.IntN(3) == 0
			for k := 0; k < 8; k++ {
				if v < 0x80 && !(pad && k < 4) {
					break
				}
				b = append(b, byte(v)|0x80)
				v >>= 7
				if k == 7 {
					b = append(b, byte(v))
					goto next
				}
			}
			b = append(b, byte(v))
		next:
		}
		end := len(b)
		b = append(b, make([]byte, 9*n)...)
		for i := range b[end:] {
			b[end+i] = byte(rng.Uint32())
		}
		got := make([]uint64, n)
		if p := varintsAt(b, 0, got); p != end {
			t.Fatalf("%x: ended at %d, want %d", b[:end], p, end)
		}
		p := 0
		for i := range want {
			var v uint64
			v, p = uvarintSlow(b, p)
			if v != want[i] || got[i] != want[i] {
				t.Fatalf("%x: value %d: got %#x, byte loop %#x, want %#x", b[:end], i, got[i], v, want[i])
			}
		}
	}
}
