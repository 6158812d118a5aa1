package verdict

import (
	"fmt"
	"strings"
	"time"
)

// A broker's own account of its requests (Kafka's request log) splits each
// request's time into phases. One of them, remote, is spent parked in a
// purgatory: an acks=all produce request waiting for the followers to
// fetch its records. No thread of the broker works on a request then, so
// the thread-time ledger of the broker alone cannot see why it waited:
// when remote holds most of the slow requests' time, that is the answer,
// and the followers are where to look.

// Phases are the mean phases of the requests over the SLO and of the
// others, from the server's own account, in the order of Names.
type Phases struct {
	Names          []string
	Slow, Within   []time.Duration
	SlowRequests   int
	WithinRequests int
}

// Replication is what the wire showed of acks=all requests' replication:
// the follower most slow requests waited for last, and when it had their
// records.
type Replication struct {
	// Follower ("broker 2") was the last to fetch past the records of Last
	// of the Slow requests followed.
	Follower   string
	Last, Slow int
	// Lag and LagWithin are the mean time from a request to the follower's
	// fetch past its records, for the slow requests and the others;
	// SlowLatency is the slow requests' mean latency.
	Lag, LagWithin, SlowLatency time.Duration
	Within                      int
}

// PhaseFinding is a phase in which the server's threads do not work on the
// request that took most of the slow requests' time.
type PhaseFinding struct {
	Phase string `json:"phase"`
	// Source is what showed it: "request log" (the broker's own phases)
	// or "wire" (the followers' fetches).
	Source string `json:"source"`
	// Share is the phase's part of the slow requests' mean time in the
	// server; Excess its part of how much longer they took than the
	// others.
	Share  float64       `json:"share"`
	Excess float64       `json:"excess_share"`
	Slow   time.Duration `json:"slow_mean_ns"`
	Total  time.Duration `json:"slow_mean_total_ns"`
	Within time.Duration `json:"within_mean_ns"`
	// Requests counts the slow requests and the others.
	Requests       int `json:"requests"`
	WithinRequests int `json:"within_requests"`
	// Followers are the followers captured in the same windows (a cluster
	// capture); Broker and Cause name the one that held the phase up and
	// what held it there, when one did.
	Followers []string `json:"followers,omitempty"`
	Broker    string   `json:"broker,omitempty"`
	Cause     string   `json:"cause,omitempty"`
	Sentence  string   `json:"sentence"`
	wire      *Replication
}

// Thresholds of a phase claim: the phase holds at least phaseShare of the
// slow requests' mean time and of their excess over the others', and is at
// least phaseRatio times the others' mean in it.
const (
	phaseShare = 0.5
	phaseRatio = 2
)

// remotePhase is the phase no thread works on.
const remotePhase = "remote"

// replicationFinding returns the remote phase's finding from the wire when
// one follower was the last to have most slow requests' records, late
// enough to make half of their latency, or nil.
func replicationFinding(r *Replication) *PhaseFinding {
	if r == nil || r.Follower == "" || r.Slow < minReplicated || 2*r.Last <= r.Slow || r.SlowLatency <= 0 {
		return nil
	}
	f := &PhaseFinding{Phase: remotePhase, Source: "wire", Broker: r.Follower, Slow: r.Lag, Total: r.SlowLatency, Within: r.LagWithin,
		Requests: r.Slow, WithinRequests: r.Within, wire: r}
	f.Share = float64(r.Lag) / float64(r.SlowLatency)
	if f.Share < phaseShare || float64(r.Lag) < phaseRatio*float64(r.LagWithin) {
		return nil
	}
	f.Excess = f.Share
	f.Sentence = f.sentence()
	return f
}

// sameBroker reports whether two names are one broker's: "broker 2" and
// "broker 2 (pid 42)".
func sameBroker(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+" ") || strings.HasPrefix(b, a+" ")
}

// minReplicated is the least number of slow requests whose replication the
// wire must show to name a follower.
const minReplicated = 5

// phaseFinding returns the remote phase's finding when it holds the slow
// requests' time, or nil.
func phaseFinding(p *Phases) *PhaseFinding {
	if p == nil || p.SlowRequests == 0 || len(p.Slow) != len(p.Names) || len(p.Within) != len(p.Names) {
		return nil
	}
	var slowTotal, withinTotal time.Duration
	for i := range p.Names {
		slowTotal += p.Slow[i]
		withinTotal += p.Within[i]
	}
	i := -1
	for j, n := range p.Names {
		if n == remotePhase {
			i = j
		}
	}
	if i < 0 || slowTotal <= 0 {
		return nil
	}
	f := &PhaseFinding{Phase: remotePhase, Source: "request log", Slow: p.Slow[i], Total: slowTotal, Within: p.Within[i],
		Requests: p.SlowRequests, WithinRequests: p.WithinRequests}
	f.Share = float64(f.Slow) / float64(slowTotal)
	if excess := slowTotal - withinTotal; excess > 0 {
		f.Excess = float64(f.Slow-f.Within) / float64(excess)
	}
	if f.Share < phaseShare || f.Excess < phaseShare || float64(f.Slow) < phaseRatio*float64(f.Within) {
		return nil
	}
	f.Sentence = f.sentence()
	return f
}

// sentence says the finding, naming the broker and its cause when known.
func (f *PhaseFinding) sentence() string {
	if r := f.wire; r != nil {
		s := fmt.Sprintf("the slow acks=all produce requests waited for the followers: %s was the last to fetch past the records of %d of the %d whose replication the wire showed, %v after the request on average (of their %v), against %v for the %d others",
			r.Follower, r.Last, r.Slow, r.Lag.Round(time.Millisecond/10), r.SlowLatency.Round(time.Millisecond/10), r.LagWithin.Round(time.Millisecond/10), r.Within)
		switch {
		case f.Cause != "" && !sameBroker(f.Broker, r.Follower):
			return s + fmt.Sprintf("; of the followers captured, %s held them up, where %s", f.Broker, f.Cause)
		case f.Cause != "":
			return s + "; there, " + f.Cause
		case len(f.Followers) > 0:
			return s + fmt.Sprintf("; nothing stood out in its replica fetchers' waiting (%s captured): its fetches may have waited on the network or on this broker", strings.Join(f.Followers, ", "))
		}
		return s + "; capture it in the same windows (lockscope capture --pid LEADER --pid FOLLOWER...) to see why it fetched late"
	}
	s := fmt.Sprintf("%.0f%% of the slow produce requests' time in the broker was replication: parked in the purgatory until the followers fetched their records (remote, acks=all), %v of %v on average against %v for the %d others",
		100*f.Share, f.Slow.Round(time.Millisecond/10), f.Total.Round(time.Millisecond/10), f.Within.Round(time.Millisecond/10), f.WithinRequests)
	switch {
	case f.Broker != "":
		s += fmt.Sprintf("; the follower that held them up: %s", f.Broker)
		if f.Cause != "" {
			s += ", where " + f.Cause
		}
		return s
	case len(f.Followers) > 0:
		return s + fmt.Sprintf("; nothing held up the followers' replica fetchers on their own brokers in those windows (%s captured): they were waiting for this broker's fetch responses, so the delay was this broker's",
			strings.Join(f.Followers, ", "))
	}
	return s + "; no thread of this broker works on a request then: capture the followers in the same windows (lockscope capture --pid LEADER --pid FOLLOWER...) to see why they fetched late"
}

// Blame says which followers were captured in the same windows and names
// the one that held the phase up and its cause (from that broker's own
// verdict), or none (broker ""); it rewrites the sentence and, when v's
// answer is the phase's, the answer.
func (v *Verdict) Blame(followers []string, broker, cause string) {
	f := v.Phase
	if f == nil {
		return
	}
	answered := v.Answer == v.phaseAnswer()
	f.Followers, f.Cause = followers, cause
	if broker != "" || f.wire == nil {
		f.Broker = broker
	}
	f.Sentence = f.sentence()
	if answered {
		v.Answer = v.phaseAnswer()
	}
}

// phaseAnswer is the answer when the phase holds the slow requests' time:
// the phase first, then what the broker's own threads showed.
func (v *Verdict) phaseAnswer() string {
	s := v.Phase.Sentence + "."
	switch {
	case len(v.Findings) > 0 && v.Findings[0].StandsOut:
		s += " On this broker's own threads: " + v.Threads
	case v.Threads != "":
		s += " No waiting of this broker's own threads stood out in those windows."
	}
	return s
}
