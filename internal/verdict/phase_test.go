package verdict

import (
	"strings"
	"testing"
	"time"
)

var phaseNames = []string{"request queue", "local", "remote", "throttle", "response queue", "send"}

func ms(v ...float64) []time.Duration {
	var out []time.Duration
	for _, x := range v {
		out = append(out, time.Duration(x*float64(time.Millisecond)))
	}
	return out
}

// TestPhaseFinding: slow acks=all requests parked for the followers make
// the answer replication, ahead of what the broker's threads showed; slow
// requests held in the local append, or remote time no longer than the
// others', do not.
func TestPhaseFinding(t *testing.T) {
	for _, c := range []struct {
		name         string
		slow, within []time.Duration
		want         bool
	}{
		{"followers late", ms(0.4, 1, 202, 0, 1.3, 1), ms(0.5, 0.2, 8.6, 0, 0.6, 0.4), true},
		{"slow local append", ms(0.4, 180, 20, 0, 1.3, 1), ms(0.5, 0.2, 8.6, 0, 0.6, 0.4), false},
		{"remote always long", ms(20, 1, 100, 0, 1.3, 1), ms(0.5, 0.2, 90, 0, 0.6, 0.4), false},
		{"acks=1: no remote", ms(150, 20, 0, 0, 1, 1), ms(0.5, 0.2, 0, 0, 0.6, 0.4), false},
	} {
		ph := &Phases{Names: phaseNames, Slow: c.slow, Within: c.within, SlowRequests: 80, WithinRequests: 1072}
		v := Decide(Input{Ledger: &Ledger{OffCPU: true}, Windows: 10, SlowTime: time.Second, BaseTime: 9 * time.Second, Phases: ph})
		if got := v.Phase != nil; got != c.want {
			t.Errorf("%s: phase finding %v, want %v (%s)", c.name, got, c.want, v.Answer)
			continue
		}
		if !c.want {
			continue
		}
		if v.Status != Found || !strings.HasPrefix(v.Answer, "98% of the slow produce requests' time in the broker was replication") ||
			!strings.Contains(v.Answer, "capture the followers") || !strings.HasSuffix(v.Answer, "No waiting of this broker's own threads stood out in those windows.") {
			t.Errorf("%s: answer %q (status %s)", c.name, v.Answer, v.Status)
		}
		v.Blame([]string{"broker 1 (pid 41)", "broker 2 (pid 42)"}, "broker 2 (pid 42)", "the ReplicaFetcherThread-0-0 thread slept in Thread.sleep (UnifiedLog.append)")
		if !strings.Contains(v.Answer, "the follower that held them up: broker 2 (pid 42), where the ReplicaFetcherThread-0-0 thread slept") ||
			strings.Contains(v.Answer, "capture the followers") {
			t.Errorf("%s: answer after blame %q", c.name, v.Answer)
		}
		v.Blame([]string{"broker 1 (pid 41)", "broker 2 (pid 42)"}, "", "")
		if !strings.Contains(v.Answer, "nothing held up the followers' replica fetchers on their own brokers in those windows (broker 1 (pid 41), broker 2 (pid 42) captured)") {
			t.Errorf("%s: answer with no follower to blame %q", c.name, v.Answer)
		}
	}
}

// TestReplicationFinding: without a request log, the wire's account names
// the follower most slow requests waited for last, when its lag makes
// most of their latency; a follower late for a few, or no later for slow
// requests than for others, is not named.
func TestReplicationFinding(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		r    Replication
		want bool
	}{
		{"late follower", Replication{Follower: "broker 2", Last: 125, Slow: 148, Lag: 135 * ms, LagWithin: 18 * ms, SlowLatency: 163 * ms, Within: 423}, true},
		{"last for a third", Replication{Follower: "broker 2", Last: 50, Slow: 148, Lag: 135 * ms, LagWithin: 18 * ms, SlowLatency: 163 * ms, Within: 423}, false},
		{"lag a small part", Replication{Follower: "broker 2", Last: 125, Slow: 148, Lag: 30 * ms, LagWithin: 10 * ms, SlowLatency: 163 * ms, Within: 423}, false},
		{"always as late", Replication{Follower: "broker 2", Last: 125, Slow: 148, Lag: 135 * ms, LagWithin: 100 * ms, SlowLatency: 163 * ms, Within: 423}, false},
		{"too few", Replication{Follower: "broker 2", Last: 3, Slow: 4, Lag: 135 * ms, LagWithin: 18 * ms, SlowLatency: 163 * ms, Within: 423}, false},
	} {
		r := c.r
		v := Decide(Input{Ledger: &Ledger{OffCPU: true}, Windows: 10, SlowTime: time.Second, BaseTime: 9 * time.Second, Replication: &r})
		if got := v.Phase != nil; got != c.want {
			t.Errorf("%s: phase finding %v, want %v: %s", c.name, got, c.want, v.Answer)
			continue
		}
		if !c.want {
			continue
		}
		if v.Phase.Source != "wire" || !strings.HasPrefix(v.Answer, "the slow acks=all produce requests waited for the followers: broker 2 was the last") {
			t.Errorf("%s: %+v: %s", c.name, v.Phase, v.Answer)
		}
		v.Blame([]string{"broker 1 (pid 1)", "broker 2 (pid 2)"}, "broker 2 (pid 2)", "its fetcher slept")
		if !strings.Contains(v.Answer, "; there, its fetcher slept") {
			t.Errorf("%s: after blame: %s", c.name, v.Answer)
		}
		v.Blame([]string{"broker 1 (pid 1)", "broker 2 (pid 2)"}, "", "")
		if !strings.Contains(v.Answer, "nothing stood out in its replica fetchers' waiting") || !strings.HasPrefix(v.Phase.Broker, "broker 2") {
			t.Errorf("%s: with no culprit: %s (%s)", c.name, v.Answer, v.Phase.Broker)
		}
	}
}
