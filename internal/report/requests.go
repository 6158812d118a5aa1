package report

import (
	"slices"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// Latencies are the produce latencies of one capture (or request log), with
// what was not measured counted beside them.
type Latencies struct {
	Metric latency.Metric
	SLO    time.Duration
	// Values are the measured latencies, sorted once Stats is called.
	Values []time.Duration
	// Unmeasured counts produce requests without a latency, by status.
	Unmeasured map[string]int64
	// First and Last are the wall-clock ns of the earliest and latest
	// response end seen.
	First, Last int64
}

// Add records a produce request; others are ignored.
func (l *Latencies) Add(r *latency.Request) {
	if r.APIKey != latency.APIProduce {
		return
	}
	if !r.Measured() {
		if l.Unmeasured == nil {
			l.Unmeasured = map[string]int64{}
		}
		l.Unmeasured[r.Status.String()]++
		return
	}
	l.Values = append(l.Values, r.Latency(l.Metric))
	if l.First == 0 || r.ResponseEnd < l.First {
		l.First = r.ResponseEnd
	}
	l.Last = max(l.Last, r.ResponseEnd)
}

// Stats summarizes latencies against the SLO.
type Stats struct {
	// Requests counts the measured produce requests.
	Requests   int64            `json:"requests"`
	Unmeasured map[string]int64 `json:"unmeasured,omitempty"`
	P50        time.Duration    `json:"p50_ns"`
	P99        time.Duration    `json:"p99_ns"`
	P999       time.Duration    `json:"p999_ns"`
	Max        time.Duration    `json:"max_ns"`
	// OverSLO counts requests whose latency exceeded the SLO (strictly, as
	// the windows do); Share is OverSLO/Requests.
	OverSLO int64   `json:"over_slo"`
	Share   float64 `json:"over_slo_share"`
}

// Stats sorts the values and computes the percentiles by nearest rank: the
// p-th percentile is the smallest latency with at least p of the requests at
// or below it, always a latency that was measured.
func (l *Latencies) Stats() Stats {
	slices.Sort(l.Values)
	s := Stats{Requests: int64(len(l.Values)), Unmeasured: l.Unmeasured}
	if len(l.Values) == 0 {
		return s
	}
	s.P50, s.P99, s.P999 = Percentile(l.Values, 0.50), Percentile(l.Values, 0.99), Percentile(l.Values, 0.999)
	s.Max = l.Values[len(l.Values)-1]
	if l.SLO > 0 {
		i, _ := slices.BinarySearch(l.Values, l.SLO+1)
		s.OverSLO = int64(len(l.Values) - i)
		s.Share = float64(s.OverSLO) / float64(len(l.Values))
	}
	return s
}

// Percentile returns the nearest-rank p-quantile of sorted values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// ceil(p*n) computed in integers per mille to dodge 0.999*1000 =
	// 998.9999 float rounding.
	n := len(sorted)
	k := (int(p*1e6+0.5)*n + 1e6 - 1) / 1e6
	return sorted[min(max(k, 1), n)-1]
}

// Slow is one of the worst requests, for the report's table.
type Slow struct {
	// At is the response's end since the capture's start.
	At         time.Duration `json:"at_ns"`
	Latency    time.Duration `json:"latency_ns"`
	Wire       time.Duration `json:"wire_ns"`
	Client     string        `json:"client,omitempty"`
	ClientID   string        `json:"client_id,omitempty"`
	Partitions string        `json:"partitions,omitempty"`
	Records    int           `json:"records"`
	Bytes      int           `json:"bytes"`
	Acks       int16         `json:"acks"`
	// InWindow is whether the request ended inside an SLO-breach window.
	InWindow bool `json:"in_window"`
}

// worstN keeps the n slowest requests seen.
type worstN struct {
	n   int
	out []Slow
}

func (w *worstN) add(s Slow) {
	if len(w.out) == w.n && s.Latency <= w.out[len(w.out)-1].Latency {
		return
	}
	i, _ := slices.BinarySearchFunc(w.out, s, func(a, b Slow) int {
		switch {
		case a.Latency > b.Latency:
			return -1
		case a.Latency < b.Latency:
			return 1
		}
		return 0
	})
	w.out = slices.Insert(w.out, i, s)
	if len(w.out) > w.n {
		w.out = w.out[:w.n]
	}
}

func slowOf(r *latency.Request, m latency.Metric, at time.Duration) Slow {
	s := Slow{At: at, Latency: r.Latency(m), Wire: r.Wire, ClientID: r.ClientID, Acks: r.Acks}
	if r.Client.IsValid() {
		s.Client = r.Client.String()
	}
	parts := make([]string, 0, len(r.Partitions))
	for _, p := range r.Partitions {
		parts = append(parts, p.String())
		if p.Records > 0 {
			s.Records += p.Records
		}
		s.Bytes += p.Bytes
	}
	switch {
	case len(parts) > 0:
		s.Partitions = strings.Join(parts, " ")
	case r.Key != "":
		s.Partitions = r.Key
	}
	return s
}
