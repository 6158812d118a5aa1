package jfr

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// decoder reads JFR encodings from one chunk held in memory. Errors are
// sticky: after the first out-of-bounds read every read returns zero and err
// stays set, so callers check once after a group of reads.
type decoder struct {
	b          []byte
	pos        int
	compressed bool
	err        error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.pos = len(d.b)
}

// varint reads an unsigned LEB128 value of at most 9 bytes; the 9th byte
// carries 8 bits, which is how JFR fits 64 bits into 9 bytes.
func (d *decoder) varint() uint64 {
	v, p := uvarint(d.b, d.pos)
	if p < 0 {
		d.fail(errShort)
		return 0
	}
	d.pos = p
	return v
}

// uvarint decodes the varint at b[p:] and returns it with the position
// after it, or p = -1 if b ends first. With 8 bytes available it loads
// them as one word, finds the last byte by its clear high bit and gathers
// the 7-bit groups without a loop (async-profiler pads every event size to
// 5 bytes and writes 7-byte timestamps, so multi-byte values are common).
func uvarint(b []byte, p int) (uint64, int) {
	if uint(p) < uint(len(b)) && b[p] < 0x80 {
		return uint64(b[p]), p + 1
	}
	if p >= 0 && p+8 <= len(b) {
		x := le64(b, p)
		m := ^x & 0x8080808080808080
		if m == 0 {
			if p+9 > len(b) {
				return 0, -1
			}
			return gather7(x) | uint64(b[p+8])<<56, p + 9
		}
		n := bits.TrailingZeros64(m)/8 + 1
		x &= ^uint64(0) >> (64 - 8*n)
		return gather7(x), p + n
	}
	return uvarintSlow(b, p)
}

// le64 loads the little-endian word at b[p:p+8]. The full slice
// expression fixes the capacity at 8, which spares the subtract, shift and
// mask that b[p:] adds to the address (against pointing past the end when
// the capacity left is zero): they would lengthen the chain of dependent
// positions when varints are read one after the other.
func le64(b []byte, p int) uint64 {
	return binary.LittleEndian.Uint64(b[p : p+8 : p+8])
}

// gather7 packs the low 7 bits of each byte of x, pairing groups in three
// steps (bytes into 14-bit, then 28-bit, then 56-bit groups): 12
// operations instead of 23 for one shift and mask per byte. Callers keep
// the gather off their critical path (the next position depends only on
// where the varint ends), so fewer operations is what counts.
func gather7(x uint64) uint64 {
	x = x&0x007f007f007f007f | (x&0x7f007f007f007f00)>>1
	x = x&0x00003fff00003fff | (x&0x3fff00003fff0000)>>2
	return x&0x000000000fffffff | (x&0x0fffffff00000000)>>4
}

func uvarintSlow(b []byte, p int) (uint64, int) {
	if p < 0 {
		return 0, -1
	}
	var v uint64
	for s := 0; s < 56; s += 7 {
		if p >= len(b) {
			return 0, -1
		}
		c := b[p]
		p++
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			return v, p
		}
	}
	if p >= len(b) {
		return 0, -1
	}
	return v | uint64(b[p])<<56, p + 1
}

func (d *decoder) u8() byte {
	if d.pos >= len(d.b) {
		d.fail(errShort)
		return 0
	}
	c := d.b[d.pos]
	d.pos++
	return c
}

func (d *decoder) fixed(n int) uint64 {
	if d.pos+n > len(d.b) || d.pos+n < d.pos {
		d.fail(errShort)
		return 0
	}
	p := d.b[d.pos : d.pos+n]
	d.pos += n
	switch n {
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	default:
		return binary.BigEndian.Uint64(p)
	}
}

// i32 reads an int (and the event size) in the chunk's integer encoding.
func (d *decoder) i32() int32 {
	if d.compressed {
		return int32(uint32(d.varint()))
	}
	return int32(uint32(d.fixed(4)))
}

// i64 reads a long (ticks, type ids, constant-pool keys) in the chunk's
// integer encoding.
func (d *decoder) i64() int64 {
	if d.compressed {
		return int64(d.varint())
	}
	return int64(d.fixed(8))
}

// count reads an array or element count and rejects values that cannot fit
// in the rest of the buffer (each element takes at least minSize bytes), so
// that a lying count never causes a large allocation or a long loop.
func (d *decoder) count(minSize int) int {
	n := d.i32()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if n < 0 || int64(n)*int64(minSize) > int64(len(d.b)-d.pos) {
		d.fail(corruptf("count %d exceeds the %d bytes left", n, len(d.b)-d.pos))
		return 0
	}
	return int(n)
}

// String encodings (the first byte of every string value).
const (
	strNull     = 0
	strEmpty    = 1
	strPool     = 2
	strUTF8     = 3
	strChars    = 4
	strLatin1   = 5
	strEncCount = 6
)

// rawString decodes a string value. A constant-pool string returns its pool
// key in ref with isRef set; the caller resolves it.
func (d *decoder) rawString() (s string, ref uint64, isRef, isNull bool) {
	switch enc := d.u8(); enc {
	case strNull:
		return "", 0, false, true
	case strEmpty:
		return "", 0, false, false
	case strPool:
		return "", uint64(d.i64()), true, false
	case strUTF8:
		n := d.count(1)
		if d.err != nil {
			return "", 0, false, true
		}
		b := d.b[d.pos : d.pos+n]
		d.pos += n
		if !utf8.Valid(b) {
			return string([]rune(string(b))), 0, false, false
		}
		return string(b), 0, false, false
	case strChars:
		n := d.count(1)
		if d.err != nil {
			return "", 0, false, true
		}
		u := make([]uint16, n)
		for i := range u {
			u[i] = uint16(d.i32())
		}
		return string(utf16.Decode(u)), 0, false, false
	case strLatin1:
		n := d.count(1)
		if d.err != nil {
			return "", 0, false, true
		}
		b := d.b[d.pos : d.pos+n]
		d.pos += n
		ascii := true
		for _, c := range b {
			if c >= 0x80 {
				ascii = false
				break
			}
		}
		if ascii {
			return string(b), 0, false, false
		}
		r := make([]rune, n)
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), 0, false, false
	default:
		if d.err == nil {
			d.fail(corruptf("unknown string encoding %d", enc))
		}
		return "", 0, false, true
	}
}

// skipString skips a string value without allocating.
func (d *decoder) skipString() {
	switch enc := d.u8(); enc {
	case strNull, strEmpty:
	case strPool:
		d.i64()
	case strUTF8, strLatin1:
		n := d.count(1)
		d.pos += n
	case strChars:
		n := d.count(1)
		for i := 0; i < n && d.err == nil; i++ {
			d.i32()
		}
	default:
		d.fail(corruptf("unknown string encoding %d", enc))
	}
}

func f32(bits uint64) float64 { return float64(math.Float32frombits(uint32(bits))) }
func f64(bits uint64) float64 { return math.Float64frombits(bits) }
