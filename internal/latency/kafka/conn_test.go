package kafka

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/lockscope/lockscope/internal/latency"
)

var (
	testClient = netip.MustParseAddrPort("127.0.0.1:40000")
	testServer = netip.MustParseAddrPort("127.0.0.1:9092")
)

// batch builds a v2 record batch header claiming n records, followed by
// payload bytes standing for the records (the framer never reads them).
func batch(n int, payload int) []byte {
	b := make([]byte, 61+payload)
	binary.BigEndian.PutUint32(b[8:], uint32(49+payload))
	b[16] = 2
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	for i := range payload {
		b[61+i] = byte(i)
	}
	return b
}

type tp struct {
	topic   string
	part    int32
	batches [][]byte
}

func produceFrame(t testing.TB, ver int16, corr int32, acks int16, txn string, parts []tp) []byte {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = ver
	req.Acks = acks
	req.TimeoutMillis = 30000
	if txn != "" {
		req.TransactionID = &txn
	}
	for _, p := range parts {
		var topic *kmsg.ProduceRequestTopic
		for i := range req.Topics {
			if req.Topics[i].Topic == p.topic {
				topic = &req.Topics[i]
			}
		}
		if topic == nil {
			req.Topics = append(req.Topics, kmsg.NewProduceRequestTopic())
			topic = &req.Topics[len(req.Topics)-1]
			topic.Topic = p.topic
			copy(topic.TopicID[:], p.topic)
		}
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p.part
		for _, b := range p.batches {
			pp.Records = append(pp.Records, b...)
		}
		topic.Partitions = append(topic.Partitions, pp)
	}
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("producer-1")).AppendRequest(nil, req, corr)
}

func otherFrame(corr int32) []byte {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 7
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("admin")).AppendRequest(nil, req, corr)
}

// responseFrame builds a response: size, correlation id, an empty tag
// section when flexible, and a body.
func responseFrame(corr int32, flexible bool, body int) []byte {
	return responseWith(corr, flexible, make([]byte, body))
}

// responseWith is responseFrame with the given body.
func responseWith(corr int32, flexible bool, body []byte) []byte {
	n := 4 + len(body)
	if flexible {
		n++
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if flexible {
		b = append(b, 0)
	}
	return append(b, body...)
}

type recorder struct{ got []*latency.Request }

func (r *recorder) emit(q *latency.Request) { r.got = append(r.got, q) }

func newTestConn(lim Limits) (*Parser, *Conn, *recorder) {
	p := NewParser(lim)
	rec := &recorder{}
	return p, p.NewConn(testClient, testServer, rec.emit), rec
}

// feedSplit feeds b in chunks of n bytes, all at time t.
func feedSplit(c *Conn, d Dir, b []byte, n int, t int64) {
	for len(b) > 0 {
		k := min(n, len(b))
		c.Feed(d, b[:k], t)
		b = b[k:]
	}
}

var ignoreTimes = cmpopts.IgnoreFields(latency.Request{}, "Client", "Server")

func TestProduceVersions(t *testing.T) {
	parts := []tp{
		{"orders", 0, [][]byte{batch(3, 40), batch(5, 7)}},
		{"orders", 7, [][]byte{batch(1, 0)}},
		{"clicks", 2, [][]byte{batch(16, 300)}},
	}
	for ver := int16(0); ver <= 13; ver++ {
		var bs [][]byte
		if ver < 2 {
			// Legacy message sets: count one per message (entries reuse the
			// batch layout's offset and size fields).
			bs = [][]byte{legacyMessage(20), legacyMessage(3)}
		}
		p := parts
		if bs != nil {
			p = []tp{{"orders", 0, bs}}
		}
		for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
			t.Run(fmt.Sprintf("v%d/chunk%d", ver, chunk), func(t *testing.T) {
				_, c, rec := newTestConn(Limits{})
				txn := ""
				if ver >= 3 {
					txn = "tx-1"
				}
				req := produceFrame(t, ver, 42, -1, txn, p)
				feedSplit(c, ToServer, req, chunk, 1000)
				feedSplit(c, ToClient, responseFrame(42, ver >= 9, 30), chunk, 5000)
				if len(rec.got) != 1 {
					t.Fatalf("got %d requests, want 1", len(rec.got))
				}
				want := &latency.Request{
					CorrelationID: 42, APIKey: 0, APIVersion: ver, ClientID: "producer-1",
					Acks: -1, TransactionalID: txn,
					RequestStart: 1000, RequestEnd: 1000, ResponseStart: 5000, ResponseEnd: 5000,
					Wire: 4000, Service: 4000, Status: latency.Answered,
				}
				topic := func(name string) string {
					if ver >= 13 {
						var id [16]byte
						copy(id[:], name)
						return base64.RawURLEncoding.EncodeToString(id[:])
					}
					return name
				}
				if bs != nil {
					want.Partitions = []latency.Partition{{Topic: topic("orders"), Partition: 0, Records: 2, Bytes: len(bs[0]) + len(bs[1])}}
				} else {
					want.Partitions = []latency.Partition{
						{Topic: topic("orders"), Partition: 0, Records: 8, Bytes: 61 + 40 + 61 + 7},
						{Topic: topic("orders"), Partition: 7, Records: 1, Bytes: 61},
						{Topic: topic("clicks"), Partition: 2, Records: 16, Bytes: 361},
					}
				}
				if diff := cmp.Diff(want, rec.got[0], ignoreTimes); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func legacyMessage(payload int) []byte {
	b := make([]byte, 12+14+payload)
	binary.BigEndian.PutUint32(b[8:], uint32(14+payload))
	b[16] = 1
	return b
}

func TestPipelinedServiceTime(t *testing.T) {
	p, c, rec := newTestConn(Limits{})
	parts := []tp{{"t", 0, [][]byte{batch(1, 10)}}}
	// Three requests sent back to back; the first is slow (100 ms), the
	// others are answered right after it.
	for i := range int32(3) {
		c.Feed(ToServer, produceFrame(t, 7, i, 1, "", parts), int64(i)*1e6)
	}
	c.Feed(ToClient, responseFrame(0, false, 10), 100e6)
	c.Feed(ToClient, responseFrame(1, false, 10), 101e6)
	c.Feed(ToClient, responseFrame(2, false, 10), 102e6)
	type lat struct{ Wire, Service time.Duration }
	var got []lat
	for _, r := range rec.got {
		got = append(got, lat{r.Wire, r.Service})
	}
	want := []lat{{100 * time.Millisecond, 100 * time.Millisecond}, {100 * time.Millisecond, time.Millisecond}, {100 * time.Millisecond, time.Millisecond}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("latencies (-want +got):\n%s", diff)
	}
	if n := p.Stats.Requests.Load(); n != 3 {
		t.Errorf("Stats.Requests = %d, want 3", n)
	}
}

func TestAcksZero(t *testing.T) {
	_, c, rec := newTestConn(Limits{})
	parts := []tp{{"t", 0, [][]byte{batch(2, 10)}}}
	c.Feed(ToServer, produceFrame(t, 8, 1, 0, "", parts), 10)
	c.Feed(ToServer, produceFrame(t, 8, 2, 1, "", parts), 20)
	c.Feed(ToClient, responseFrame(2, false, 10), 30)
	if len(rec.got) != 2 {
		t.Fatalf("got %d requests, want 2", len(rec.got))
	}
	if r := rec.got[0]; r.CorrelationID != 1 || r.Status != latency.NoResponse {
		t.Errorf("acks=0 request: corr %d status %v, want 1 no_response", r.CorrelationID, r.Status)
	}
	if r := rec.got[1]; r.CorrelationID != 2 || r.Status != latency.Answered || r.Wire != 10 {
		t.Errorf("acks=1 request: corr %d status %v wire %v, want 2 answered 10ns", r.CorrelationID, r.Status, r.Wire)
	}
}

func TestMidStreamResync(t *testing.T) {
	p, c, rec := newTestConn(Limits{})
	parts := []tp{{"t", 3, [][]byte{batch(4, 200)}}}
	first := produceFrame(t, 7, 5, 1, "", parts)
	var reqs []byte
	reqs = append(reqs, first[37:]...) // the tail of a request sent before the capture
	reqs = append(reqs, otherFrame(6)...)
	reqs = append(reqs, produceFrame(t, 7, 7, 1, "", parts)...)
	c.Desync(ToServer)
	c.Desync(ToClient)
	feedSplit(c, ToServer, reqs, 50, 100)
	var resps []byte
	resps = append(resps, responseFrame(5, false, 30)[11:]...)
	resps = append(resps, responseFrame(6, false, 30)...)
	resps = append(resps, responseFrame(7, false, 30)...)
	feedSplit(c, ToClient, resps, 50, 200)
	var corrs []int32
	for _, r := range rec.got {
		if r.Status != latency.Answered || r.Wire != 100 {
			t.Errorf("request %d: status %v wire %v, want answered 100ns", r.CorrelationID, r.Status, r.Wire)
		}
		corrs = append(corrs, r.CorrelationID)
	}
	if diff := cmp.Diff([]int32{6, 7}, corrs); diff != "" {
		t.Errorf("answered (-want +got):\n%s", diff)
	}
	if got := rec.got[1].Partitions; len(got) != 1 || got[0].Records != 4 || got[0].Partition != 3 {
		t.Errorf("partitions after resync = %+v", got)
	}
	if p.Stats.Resyncs.Load() != 0 && p.Stats.SkippedBytes.Load() == 0 {
		t.Errorf("no bytes skipped while resyncing")
	}
}

func TestGapInsideRecordsKeepsFraming(t *testing.T) {
	_, c, rec := newTestConn(Limits{})
	parts := []tp{{"t", 0, [][]byte{batch(9, 1000)}}, {"t", 1, [][]byte{batch(2, 10)}}}
	req := produceFrame(t, 7, 1, -1, "", parts)
	// Lose 300 bytes in the middle of partition 0's records.
	cut := 200
	c.Feed(ToServer, req[:cut], 10)
	c.Gap(ToServer, 300, 20)
	c.Feed(ToServer, req[cut+300:], 20)
	c.Feed(ToServer, otherFrame(2), 30)
	c.Feed(ToClient, responseFrame(1, false, 10), 40)
	c.Feed(ToClient, responseFrame(2, false, 10), 50)
	if len(rec.got) != 2 {
		t.Fatalf("got %d requests, want 2", len(rec.got))
	}
	r := rec.got[0]
	want := []latency.Partition{{Topic: "t", Partition: 0, Records: -1, Bytes: 1061}, {Topic: "t", Partition: 1, Records: 2, Bytes: 71}}
	if diff := cmp.Diff(want, r.Partitions); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
	if !r.Damaged || r.Wire != 20 || rec.got[1].Wire != 20 {
		t.Errorf("damaged %v wire %v/%v, want true 20ns/20ns", r.Damaged, r.Wire, rec.got[1].Wire)
	}
}

func TestGapAcrossFramesResyncs(t *testing.T) {
	p, c, rec := newTestConn(Limits{})
	parts := []tp{{"t", 0, [][]byte{batch(1, 20)}}}
	var frames [][]byte
	for i := range int32(6) {
		frames = append(frames, produceFrame(t, 7, i, 1, "", parts))
	}
	// Request 2 and the first half of request 3 are lost.
	c.Feed(ToServer, frames[0], 1)
	c.Feed(ToServer, frames[1], 2)
	c.Gap(ToServer, int64(len(frames[2])+len(frames[3])/2), 4)
	c.Feed(ToServer, frames[3][len(frames[3])/2:], 4)
	c.Feed(ToServer, frames[4], 5)
	c.Feed(ToServer, frames[5], 6)
	for i := range int32(6) {
		c.Feed(ToClient, responseFrame(i, false, 10), 100)
	}
	c.Close(200)
	var corrs []int32
	for _, r := range rec.got {
		if r.Status == latency.Answered {
			corrs = append(corrs, r.CorrelationID)
		}
	}
	if diff := cmp.Diff([]int32{0, 1, 4, 5}, corrs); diff != "" {
		t.Errorf("answered (-want +got):\n%s", diff)
	}
	if n := p.Stats.UnmatchedResponses.Load(); n != 2 {
		t.Errorf("UnmatchedResponses = %d, want 2 (for the lost requests)", n)
	}
}

func TestResponseBeforeRequest(t *testing.T) {
	_, c, rec := newTestConn(Limits{})
	c.Feed(ToClient, responseFrame(9, false, 10), 50)
	c.Feed(ToServer, otherFrame(9), 40)
	if len(rec.got) != 1 || rec.got[0].Wire != 10 || rec.got[0].Status != latency.Answered {
		t.Fatalf("got %+v, want one answered request with wire 10ns", rec.got)
	}
}

func TestLostResponse(t *testing.T) {
	_, c, rec := newTestConn(Limits{Overtaken: 1})
	for i := range int32(4) {
		c.Feed(ToServer, otherFrame(i), int64(i))
	}
	c.Feed(ToClient, responseFrame(1, false, 1), 10) // 0 overtaken once
	c.Feed(ToClient, responseFrame(2, false, 1), 11) // twice: lost
	var got []string
	for _, r := range rec.got {
		got = append(got, fmt.Sprintf("%d:%v", r.CorrelationID, r.Status))
	}
	want := []string{"1:answered", "0:lost_response", "2:answered"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c.Close(20)
	if r := rec.got[len(rec.got)-1]; r.CorrelationID != 3 || r.Status != latency.Unanswered {
		t.Errorf("after close: %d %v, want 3 unanswered", r.CorrelationID, r.Status)
	}
}

func TestTLS(t *testing.T) {
	p, c, rec := newTestConn(Limits{})
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	c.Feed(ToServer, hello, 1)
	c.Feed(ToServer, otherFrame(1), 2)
	if !c.TLS() || p.Stats.TLSConns.Load() != 1 || len(rec.got) != 0 {
		t.Errorf("TLS() = %v, TLSConns = %d, requests %d; want true, 1, 0", c.TLS(), p.Stats.TLSConns.Load(), len(rec.got))
	}
	// Mid-stream: application-data records.
	p, c, _ = newTestConn(Limits{})
	c.Desync(ToServer)
	for i := range 3 {
		c.Feed(ToServer, append([]byte{0x17, 0x03, 0x03, 0x00, 0x20}, make([]byte, 32+i)...), 1)
	}
	if !c.TLS() {
		t.Errorf("mid-stream TLS not recognised")
	}
}

func TestBoundedPending(t *testing.T) {
	p, c, rec := newTestConn(Limits{MaxPending: 8})
	for i := range int32(100) {
		c.Feed(ToServer, otherFrame(i), int64(i))
	}
	if len(c.pending) != 8 || len(rec.got) != 92 || p.Stats.Evicted.Load() != 92 {
		t.Errorf("pending %d, emitted %d, evicted %d; want 8, 92, 92", len(c.pending), len(rec.got), p.Stats.Evicted.Load())
	}
}

func TestHugeFrameStreamsWithoutBuffering(t *testing.T) {
	_, c, rec := newTestConn(Limits{})
	req := produceFrame(t, 7, 1, -1, "", []tp{{"big", 0, [][]byte{batch(1000, 8<<20)}}})
	feedSplit(c, ToServer, req, 65536, 1)
	c.Feed(ToClient, responseFrame(1, false, 10), 2)
	if len(rec.got) != 1 || rec.got[0].Partitions[0].Records != 1000 {
		t.Fatalf("got %+v", rec.got)
	}
	if cap(c.req.acc) > 4<<10 {
		t.Errorf("accumulator grew to %d bytes", cap(c.req.acc))
	}
}

// TestResyncEveryOffset starts the capture at every offset of a request
// stream and checks that every request after the first whole one is found
// with its exact timing, and that no phantom request is reported.
func TestResyncEveryOffset(t *testing.T) {
	var reqs, resps []byte
	var starts []int
	for i := range int32(6) {
		starts = append(starts, len(reqs))
		var f []byte
		switch i % 3 {
		case 0:
			f = produceFrame(t, 7, i, 1, "", []tp{{"t", i, [][]byte{batch(int(i)+1, 100+int(i))}}})
		case 1:
			f = produceFrame(t, 9, i, -1, "", []tp{{"u", 0, [][]byte{batch(2, 10)}}, {"v", 1, [][]byte{batch(3, 0)}}})
		default:
			f = otherFrame(i)
		}
		reqs = append(reqs, f...)
		resps = append(resps, responseFrame(i, i%3 == 1, 20+int(i))...)
	}
	for off := 1; off < starts[3]; off++ {
		for _, chunk := range []int{13, 100, 1500} {
			p, c, rec := newTestConn(Limits{})
			c.Desync(ToServer)
			// Chunks keep their own times: request i ends at its index.
			b := reqs[off:]
			pos := off
			for len(b) > 0 {
				k := min(chunk, len(b))
				c.Feed(ToServer, b[:k], int64(pos+k))
				b, pos = b[k:], pos+k
			}
			c.Feed(ToClient, resps, 1e9)
			var corrs []int32
			for _, r := range rec.got {
				if r.Status != latency.Answered {
					t.Fatalf("offset %d chunk %d: request %d %v", off, chunk, r.CorrelationID, r.Status)
				}
				if end := int64(starts[r.CorrelationID]); r.RequestEnd < end {
					t.Fatalf("offset %d chunk %d: request %d ends at %d, before its own start %d", off, chunk, r.CorrelationID, r.RequestEnd, end)
				}
				corrs = append(corrs, r.CorrelationID)
			}
			first := 0
			for first < len(starts) && starts[first] < off {
				first++
			}
			var want []int32
			for i := first; i < 6; i++ {
				want = append(want, int32(i))
			}
			if diff := cmp.Diff(want, corrs); diff != "" {
				t.Fatalf("offset %d chunk %d: answered (-want +got):\n%s", off, chunk, diff)
			}
			if len(c.pending) != 0 {
				t.Fatalf("offset %d chunk %d: %d phantom requests pending", off, chunk, len(c.pending))
			}
			_ = p
		}
	}
}

// TestTopicIDsNamedFromMetadata: Produce v13 names topics by id; a
// Metadata v12 response seen earlier (on any connection of the parser)
// gives their names.
func TestTopicIDsNamedFromMetadata(t *testing.T) {
	p, meta, rec := newTestConn(Limits{})
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	meta.Feed(ToServer, kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, mreq, 1), 1)
	mresp := kmsg.NewPtrMetadataResponse()
	mresp.Version = 12
	for _, name := range []string{"orders", "clicks"} {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = kmsg.StringPtr(name)
		copy(mt.TopicID[:], name)
		mresp.Topics = append(mresp.Topics, mt)
	}
	body := mresp.AppendTo(nil)
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+1+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = append(frame, 0) // flexible response header: no tags
	frame = append(frame, body...)
	feedSplit(meta, ToClient, frame, 7, 2)

	prod := p.NewConn(testClient, testServer, rec.emit)
	prod.Feed(ToServer, produceFrame(t, 13, 5, -1, "", []tp{{"orders", 0, [][]byte{batch(1, 0)}}, {"other", 1, [][]byte{batch(1, 0)}}}), 3)
	prod.Feed(ToClient, responseFrame(5, true, 0), 4)
	if len(rec.got) != 2 {
		t.Fatalf("got %d requests, want 2", len(rec.got))
	}
	var other [16]byte
	copy(other[:], "other")
	got := []string{rec.got[1].Partitions[0].Topic, rec.got[1].Partitions[1].Topic}
	want := []string{"orders", base64.RawURLEncoding.EncodeToString(other[:])}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
}

// TestMidStreamOnlyFrame: a connection seen mid-stream whose only traffic
// is one produce request and its response (a long-lived producer's
// connection, sniffed from the middle). No next frame confirms either
// candidate; the response's correlation id confirms the request.
func TestMidStreamOnlyFrame(t *testing.T) {
	parts := []tp{{"t", 3, [][]byte{batch(4, 200)}}}
	for _, tc := range []struct {
		name       string
		reqs, resp []byte
	}{
		{"alone", produceFrame(t, 7, 9, 1, "", parts), responseFrame(9, false, 30)},
		{"after a tail", append(produceFrame(t, 7, 8, 1, "", parts)[41:], produceFrame(t, 7, 9, 1, "", parts)...),
			append(responseFrame(8, false, 30)[13:], responseFrame(9, false, 30)...)},
		{"flexible", produceFrame(t, 9, 9, -1, "", parts), responseFrame(9, true, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, rec := newTestConn(Limits{})
			c.Desync(ToServer)
			c.Desync(ToClient)
			feedSplit(c, ToServer, tc.reqs, 60, 100)
			feedSplit(c, ToClient, tc.resp, 60, 200)
			if len(rec.got) != 1 || rec.got[0].CorrelationID != 9 || rec.got[0].Status != latency.Answered || rec.got[0].Wire != 100 {
				t.Fatalf("got %+v, want request 9 answered after 100ns", rec.got)
			}
			if p := rec.got[0].Partitions; len(p) != 1 || p[0].Records != 4 {
				t.Errorf("partitions %+v", p)
			}
		})
	}
}

// TestMidStreamLastFrameAtClose: frames still undecided when the
// connection closes (or the capture ends) are judged then: the last
// request, whose response was not seen, is reported unanswered rather than
// dropped.
func TestMidStreamLastFrameAtClose(t *testing.T) {
	parts := []tp{{"t", 3, [][]byte{batch(2, 100)}}}
	_, c, rec := newTestConn(Limits{})
	c.Desync(ToServer)
	c.Desync(ToClient)
	feedSplit(c, ToServer, produceFrame(t, 8, 4, 1, "", parts), 40, 100)
	if len(rec.got) != 0 {
		t.Fatalf("reported before the connection ended: %+v", rec.got)
	}
	c.Close(300)
	if len(rec.got) != 1 || rec.got[0].CorrelationID != 4 || rec.got[0].Status != latency.Unanswered {
		t.Fatalf("after Close: %+v, want request 4 unanswered", rec.got)
	}

	// Bytes that do not end at a frame boundary are still not a frame.
	_, c, rec = newTestConn(Limits{})
	c.Desync(ToServer)
	frame := produceFrame(t, 8, 4, 1, "", parts)
	feedSplit(c, ToServer, frame[:len(frame)-3], 40, 100)
	c.Close(300)
	if len(rec.got) != 0 {
		t.Errorf("a cut frame reported at Close: %+v", rec.got)
	}
}
