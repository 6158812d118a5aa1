package kafka

import (
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// FuzzConn drives a connection with a script read from the input: each
// step is an opcode byte, a length byte and (for feeds) that many bytes.
// Whatever the input, the parser must not panic, must keep its memory
// bounds, and every request it reports must be consistent.
func FuzzConn(f *testing.F) {
	parts := []tp{{"orders", 1, [][]byte{batch(3, 20)}}}
	seed := func(ops ...[]byte) []byte {
		var b []byte
		for _, o := range ops {
			b = append(b, o...)
		}
		return b
	}
	op := func(code byte, data []byte) []byte {
		var out []byte
		for len(data) > 0 {
			k := min(255, len(data))
			out = append(out, code, byte(k))
			out = append(out, data[:k]...)
			data = data[k:]
		}
		return out
	}
	f.Add(seed(op(0, produceFrame(f, 7, 1, -1, "", parts)), op(1, responseFrame(1, false, 10))))
	f.Add(seed(op(0, produceFrame(f, 9, 1, 1, "tx", parts)), op(2, []byte{7}), op(1, responseFrame(1, true, 10))))
	f.Add(seed([]byte{3, 0}, op(0, produceFrame(f, 3, 5, 0, "", parts)[9:]), op(0, otherFrame(6)), op(1, responseFrame(6, false, 3))))
	f.Add(seed(op(0, produceFrame(f, 13, 2, -1, "", parts)), op(1, responseFrame(2, true, 0))))
	f.Fuzz(func(t *testing.T, script []byte) {
		p := NewParser(Limits{MaxPending: 16, MaxOrphans: 8})
		var bad string
		c := p.NewConn(testClient, testServer, func(r *latency.Request) {
			switch {
			case r.Status > latency.LostResponse:
				bad = "status out of range"
			case r.Status == latency.Answered && r.Wire != time.Duration(r.ResponseEnd-r.RequestEnd):
				bad = "wire latency is not response end − request end"
			case r.Status == latency.Answered && (r.Service < 0 || r.Service > r.Wire && r.Wire >= 0):
				bad = "service time outside [0, wire]"
			case r.RequestStart > r.RequestEnd:
				bad = "request ends before it starts"
			}
		})
		var now int64
		for len(script) >= 2 {
			code, n := script[0]%5, int(script[1])
			script = script[2:]
			now += int64(n)
			switch code {
			case 0, 1:
				n = min(n, len(script))
				c.Feed(Dir(code), script[:n], now)
				script = script[n:]
			case 2:
				c.Gap(Dir(n&1), int64(n>>1)+1, now)
			case 3:
				c.Desync(Dir(n & 1))
			case 4:
				c.Feed(Dir(n&1), nil, now)
			}
			if bad != "" {
				t.Fatal(bad)
			}
			if len(c.pending) > 16 || len(c.orphans) > 8 {
				t.Fatalf("pending %d, orphans %d over their limits", len(c.pending), len(c.orphans))
			}
			for _, s := range []*stream{&c.req, &c.resp} {
				if len(s.carry) > maxCarry+255 || cap(s.acc) > maxPrimitive+64 {
					t.Fatalf("buffers grew: carry %d acc %d", len(s.carry), cap(s.acc))
				}
			}
		}
		c.Close(now)
		if bad != "" {
			t.Fatal(bad)
		}
	})
}
