package merge

import (
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

func TestPhaseSummary(t *testing.T) {
	var a PhaseAccumulator
	if a.Summary() != nil {
		t.Fatal("a summary of no requests")
	}
	ms := time.Millisecond
	for range 3 {
		a.Add(&latency.Breakdown{RequestQueue: ms, Local: 2 * ms, Remote: 180 * ms, ResponseQueue: ms, Send: ms}, true)
	}
	a.Add(&latency.Breakdown{RequestQueue: ms, Local: 2 * ms, Remote: 6 * ms, Send: ms}, false)
	a.Add(nil, false) // a request without a breakdown (the sniffer's) is not counted
	s := a.Summary()
	if s.Slow.Requests != 3 || s.Within.Requests != 1 || s.Dominant != "remote" || s.Slow.Mean[2] != 180*ms || s.Slow.Total != 185*ms {
		t.Errorf("summary %+v", s)
	}
	if !strings.Contains(s.Sentence, "97% of their time in the broker in remote") || !strings.Contains(s.Sentence, "60% there") {
		t.Errorf("sentence %q", s.Sentence)
	}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil || !strings.Contains(b.String(), "remote") {
		t.Errorf("text %v: %s", err, b.String())
	}
}
