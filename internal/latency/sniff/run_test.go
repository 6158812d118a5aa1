package sniff

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	var all []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		h.add(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)-1))]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*1.07+32 {
			t.Errorf("q%.3f = %v, exact %v: outside [exact, exact·1.07]", q, got, exact)
		}
	}
}

func TestRunOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    RunOptions
		ok   bool
	}{
		{"ok", RunOptions{Ports: []int{9092}, SLO: 65 * time.Millisecond, Metric: "wire"}, true},
		{"no port", RunOptions{SLO: time.Millisecond, Metric: "wire"}, false},
		{"bad port", RunOptions{Ports: []int{70000}, SLO: time.Millisecond, Metric: "wire"}, false},
		{"no slo", RunOptions{Ports: []int{9092}, Metric: "wire"}, false},
		{"bad metric", RunOptions{Ports: []int{9092}, SLO: time.Millisecond, Metric: "p99"}, false},
		{"write with read", RunOptions{Ports: []int{9092}, SLO: time.Millisecond, Metric: "wire", Read: "a", Write: "b"}, false},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
