package sniff

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff/synth"
)

type capturedPacket struct {
	data []byte
	t    int64
}

func synthPackets(t *testing.T, cfg synth.Config) ([]capturedPacket, map[[2]int64]synth.Expect) {
	t.Helper()
	var buf bytes.Buffer
	want := map[[2]int64]synth.Expect{}
	if _, err := synth.Write(&buf, cfg, func(e synth.Expect) { want[[2]int64{int64(e.Client.Port()), int64(e.Corr)}] = e }); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var pkts []capturedPacket
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, capturedPacket{data, ci.Timestamp.UnixNano()})
	}
	return pkts, want
}

// TestReorderedAndDuplicatedSegments swaps neighbouring packets and repeats
// others (as a capture on a bonded or mirrored port shows them): every
// request must still be matched, segments delivered in sequence order, and
// only requests whose segments were swapped may see their end move (to
// when the broker could have had the whole request).
func TestReorderedAndDuplicatedSegments(t *testing.T) {
	pkts, want := synthPackets(t, synth.Config{Connections: 4, Requests: 400, MaxRecords: 40, RecordSize: 400, SlowEvery: 40})
	var shuffled []capturedPacket
	for i := 0; i < len(pkts); i++ {
		switch {
		case i%37 == 5 && i+1 < len(pkts):
			shuffled = append(shuffled, pkts[i+1], pkts[i])
			i++
		case i%53 == 7:
			shuffled = append(shuffled, pkts[i], pkts[i])
		default:
			shuffled = append(shuffled, pkts[i])
		}
	}
	var got []*latency.Request
	s, err := New(Options{Ports: []uint16{9092}}, func(r *latency.Request) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range shuffled {
		s.Packet(layers.LinkTypeEthernet, p.data, p.t)
	}
	s.Flush(shuffled[len(shuffled)-1].t)
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	exact := 0
	for _, r := range got {
		e := want[[2]int64{int64(r.Client.Port()), int64(r.CorrelationID)}]
		if r.Status != latency.Answered || r.Damaged {
			t.Errorf("%v %d: %v damaged=%v", r.Client, r.CorrelationID, r.Status, r.Damaged)
		}
		if r.Wire == e.Wire {
			exact++
		} else if d := e.Wire - r.Wire; d < 0 || d > 10_000 {
			t.Errorf("%v %d: wire %v, want %v or at most 10 µs less", r.Client, r.CorrelationID, r.Wire, e.Wire)
		}
	}
	if s.Stats.OutOfOrder.Load() == 0 || s.Stats.Duplicates.Load() == 0 || s.Stats.Holes.Load() != 0 {
		t.Errorf("out of order %d, duplicates %d, holes %d: want some, some, none",
			s.Stats.OutOfOrder.Load(), s.Stats.Duplicates.Load(), s.Stats.Holes.Load())
	}
	t.Logf("%d of %d latencies exact; %d out-of-order and %d duplicate segments", exact, len(got), s.Stats.OutOfOrder.Load(), s.Stats.Duplicates.Load())
	if s.buffered != 0 {
		t.Errorf("%d bytes still counted as buffered after the flush", s.buffered)
	}

	// With room for no out-of-order byte at all, every early segment skips
	// its hole at once: requests are damaged or lost, never stuck.
	got = got[:0]
	s, _ = New(Options{Ports: []uint16{9092}, MaxBufferedTotal: 1}, func(r *latency.Request) { got = append(got, r) })
	for _, p := range shuffled {
		s.Packet(layers.LinkTypeEthernet, p.data, p.t)
		if s.buffered > 1 {
			t.Fatalf("%d bytes buffered over a total limit of 1", s.buffered)
		}
	}
	s.Flush(shuffled[len(shuffled)-1].t)
	if s.Stats.Holes.Load() == 0 || len(got) == 0 {
		t.Errorf("holes %d, requests %d: want holes skipped and requests still reported", s.Stats.Holes.Load(), len(got))
	}
}

// TestResetEndsConnection: a RST ends the connection at once; the request
// still awaiting its response is reported Unanswered, not kept.
func TestResetEndsConnection(t *testing.T) {
	pkts, _ := synthPackets(t, synth.Config{Connections: 1, Requests: 3, MaxRecords: 1})
	// Handshake (3 packets), then per request: request segment, its ACK,
	// response segment, its ACK. Cut after the third request's ACK.
	cut := 3 + 2*4 + 2
	var got []*latency.Request
	s, err := New(Options{Ports: []uint16{9092}}, func(r *latency.Request) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts[:cut] {
		s.Packet(layers.LinkTypeEthernet, p.data, p.t)
	}
	// The server resets: reuse the last server-to-client ACK with RST set.
	rst := append([]byte(nil), pkts[cut-1].data...)
	rst[14+20+13] |= flagRST
	s.Packet(layers.LinkTypeEthernet, rst, pkts[cut-1].t+1000)
	if len(got) != 3 || got[2].Status != latency.Unanswered || s.Connections() != 0 {
		t.Fatalf("after RST: %d requests (last %v), %d connections; want 3 with the last unanswered, 0", len(got), got[len(got)-1].Status, s.Connections())
	}
	for _, r := range got[:2] {
		if r.Status != latency.Answered {
			t.Errorf("request %d: %v", r.CorrelationID, r.Status)
		}
	}
}

// TestConnectionLimit: past MaxConnections the quietest connection is
// closed (its pending request reported unanswered), the table stays bounded.
func TestConnectionLimit(t *testing.T) {
	pkts, want := synthPackets(t, synth.Config{Connections: 10, Requests: 10, MaxRecords: 1})
	var got []*latency.Request
	s, err := New(Options{Ports: []uint16{9092}, MaxConnections: 4}, func(r *latency.Request) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		s.Packet(layers.LinkTypeEthernet, p.data, p.t)
		if s.Connections() > 4 {
			t.Fatalf("%d connections followed, limit 4", s.Connections())
		}
	}
	s.Flush(pkts[len(pkts)-1].t)
	if s.Stats.EvictedConnections.Load() == 0 || len(got) > len(want) {
		t.Errorf("evicted %d, %d requests of %d", s.Stats.EvictedConnections.Load(), len(got), len(want))
	}
}
