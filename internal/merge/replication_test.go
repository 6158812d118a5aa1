package merge

import (
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// TestReplicationFromFetches: acks=all requests, followers' fetches past
// their records at known times. Broker 2 fetches 150 ms late for the slow
// requests and is the one they waited for; broker 1 is always quick; a
// third follower out of the ISR, fetching only after the responses, is
// never counted as waited for.
func TestReplicationFromFetches(t *testing.T) {
	ms := int64(time.Millisecond)
	var a ReplicationAccumulator
	fetch := func(replica int32, at, offset int64) {
		a.Add(&latency.Request{APIKey: latency.APIFetch, RequestEnd: at,
			Replica: &latency.ReplicaFetch{Replica: replica, Offsets: []latency.FetchOffset{{Topic: "orders", Partition: 0, Offset: offset}}}},
			latency.Service, 65*time.Millisecond)
	}
	for i := range int64(20) {
		start := i * 1000 * ms
		slow := i%2 == 0
		lag2 := 5 * ms
		if slow {
			lag2 = 150 * ms
		}
		off := i * 10
		resp := start + max(lag2, 3*ms) + ms
		a.Add(&latency.Request{APIKey: latency.APIProduce, Acks: -1, Status: latency.Answered, RequestEnd: start, ResponseStart: resp,
			ResponseEnd: resp, Service: time.Duration(resp - start), Wire: time.Duration(resp - start),
			Partitions: []latency.Partition{{Topic: "orders", Partition: 0, Records: 10, BaseOffset: &off}}}, latency.Service, 65*time.Millisecond)
		fetch(1, start-ms, off)      // before the request: not past its records
		fetch(1, start+3*ms, off+10) // broker 1 has them 3 ms after
		fetch(2, start+lag2, off+10) // broker 2, late for the slow ones
		fetch(3, resp+50*ms, off+10) // out of the ISR: after the response
	}
	s := a.Summary()
	if s == nil || s.Slow != 10 || s.Within != 10 {
		t.Fatalf("summary %+v, want 10 slow and 10 other requests followed", s)
	}
	if s.Dominant != "broker 2" || s.Followers[0].Replica != 2 || s.Followers[0].LastSlow != 10 {
		t.Errorf("followers %+v, dominant %q: want broker 2 last for all 10 slow requests", s.Followers, s.Dominant)
	}
	if f := s.Followers[0]; f.LagSlow != 150*time.Millisecond || f.LagWithin != 5*time.Millisecond {
		t.Errorf("broker 2's lag %v slow, %v others; want 150ms and 5ms", f.LagSlow, f.LagWithin)
	}
	for _, f := range s.Followers {
		if f.Replica == 3 {
			t.Errorf("broker 3, out of the ISR, counted: %+v", f)
		}
	}
	v := s.Verdict()
	if v == nil || v.Follower != "broker 2" || v.Last != 10 {
		t.Errorf("verdict input %+v", v)
	}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil || !strings.Contains(b.String(), "broker 2") {
		t.Errorf("text: %v\n%s", err, b.String())
	}
}
