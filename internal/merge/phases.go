package merge

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Phases of produce requests, as the broker's request log measures them
// (Kafka's kafka.request.logger: request queue, local, remote, response
// queue, send): where requests over the SLO spent their time against those
// within it. Remote is the purgatory: an acks=all request waiting for the
// followers, with no broker thread busy on its behalf, which a thread-based
// profile of the leader cannot see.

// PhaseNames are the phases in order.
var PhaseNames = latency.PhaseNames

// PhaseSummary compares the phases of slow and other produce requests.
type PhaseSummary struct {
	// Slow and Within are the requests over the SLO and the others, with
	// their mean time per phase (PhaseNames order) and mean total.
	Slow   PhaseGroup `json:"slow"`
	Within PhaseGroup `json:"within"`
	// Dominant is the phase with the largest share of the slow requests'
	// time; Sentence says it.
	Dominant string `json:"dominant"`
	Sentence string `json:"sentence"`
	// Of names the broker whose requests these are, when another than
	// the bundle's (a follower's bundle in a cluster capture).
	Of string `json:"of,omitempty"`
}

// PhaseGroup is the mean phases of a group of requests.
type PhaseGroup struct {
	Requests int             `json:"requests"`
	Mean     []time.Duration `json:"mean_ns"`
	Total    time.Duration   `json:"mean_total_ns"`
}

// PhaseAccumulator sums the phases of requests as they are read.
type PhaseAccumulator struct {
	slow, within [6]time.Duration
	ns, nw       int
}

// Add counts a request with a broker-side breakdown.
func (a *PhaseAccumulator) Add(b *latency.Breakdown, overSLO bool) {
	if b == nil {
		return
	}
	ph := b.Phases()
	dst := &a.within
	if overSLO {
		dst, a.ns = &a.slow, a.ns+1
	} else {
		a.nw++
	}
	for i, v := range ph {
		dst[i] += v
	}
}

// Summary is the comparison, or nil when no request had a breakdown.
func (a *PhaseAccumulator) Summary() *PhaseSummary {
	if a.ns+a.nw == 0 {
		return nil
	}
	group := func(sum [6]time.Duration, n int) PhaseGroup {
		g := PhaseGroup{Requests: n, Mean: make([]time.Duration, len(sum))}
		if n == 0 {
			return g
		}
		for i, v := range sum {
			g.Mean[i] = v / time.Duration(n)
			g.Total += g.Mean[i]
		}
		return g
	}
	s := &PhaseSummary{Slow: group(a.slow, a.ns), Within: group(a.within, a.nw)}
	if s.Slow.Requests == 0 || s.Slow.Total == 0 {
		s.Sentence = fmt.Sprintf("no produce request over the SLO; the %d others took %v on average in the broker", s.Within.Requests, s.Within.Total.Round(time.Microsecond))
		return s
	}
	best := 0
	for i, v := range s.Slow.Mean {
		if v > s.Slow.Mean[best] {
			best = i
		}
	}
	s.Dominant = PhaseNames[best]
	share := func(g PhaseGroup, i int) float64 {
		if g.Total == 0 {
			return 0
		}
		return float64(g.Mean[i]) / float64(g.Total)
	}
	what := ""
	switch s.Dominant {
	case "remote":
		what = " (waiting in the purgatory for the followers to replicate: acks=all)"
	case "local":
		what = " (the handler's own work: the append)"
	case "request queue":
		what = " (waiting for a free request handler)"
	}
	s.Sentence = fmt.Sprintf("produce requests over the SLO spent %.0f%% of their time in the broker in %s%s, %v of %v on average; the %d within it spent %.0f%% there (%v of %v)",
		100*share(s.Slow, best), s.Dominant, what, s.Slow.Mean[best].Round(time.Microsecond), s.Slow.Total.Round(time.Microsecond),
		s.Within.Requests, 100*share(s.Within, best), s.Within.Mean[best].Round(time.Microsecond), s.Within.Total.Round(time.Microsecond))
	return s
}

// Verdict is the summary as the verdict takes it (nil for nil).
func (s *PhaseSummary) Verdict() *verdict.Phases {
	if s == nil {
		return nil
	}
	return &verdict.Phases{Names: PhaseNames, Slow: s.Slow.Mean, Within: s.Within.Mean,
		SlowRequests: s.Slow.Requests, WithinRequests: s.Within.Requests}
}

// WriteText writes the phase table.
func (s *PhaseSummary) WriteText(w io.Writer) error {
	var b strings.Builder
	if s.Of != "" {
		fmt.Fprintf(&b, "Phases of produce requests in %s (its request log: its slow requests made these windows), mean:\n  %s\n", s.Of, s.Sentence)
	} else {
		fmt.Fprintf(&b, "Phases of produce requests in the broker (its request log), mean:\n  %s\n", s.Sentence)
	}
	fmt.Fprintf(&b, "  %-16s %14s %14s\n", "phase", fmt.Sprintf("slow (%d)", s.Slow.Requests), fmt.Sprintf("others (%d)", s.Within.Requests))
	for i, n := range PhaseNames {
		var sv, wv time.Duration
		if len(s.Slow.Mean) > i {
			sv = s.Slow.Mean[i]
		}
		if len(s.Within.Mean) > i {
			wv = s.Within.Mean[i]
		}
		fmt.Fprintf(&b, "  %-16s %14v %14v\n", n, sv.Round(time.Microsecond), wv.Round(time.Microsecond))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
