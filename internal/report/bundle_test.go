package report_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/report"
)

// makeBundle writes a bundle with the given requests.jsonl content (none if
// empty) and meta.
func makeBundle(t *testing.T, requests string, meta bundle.Meta) *bundle.Bundle {
	t.Helper()
	dir := t.TempDir() + "/b"
	w, err := bundle.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if requests != "" {
		if err := os.WriteFile(w.Path(bundle.RequestsFile), []byte(requests), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(&meta); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReportWithoutSpanOrMerge: a bundle that records no capture span and
// was never merged still gets a report, which says what is missing.
func TestReportWithoutSpanOrMerge(t *testing.T) {
	var lines strings.Builder
	base := int64(1_700_000_000_000_000_000)
	for i := 1; i <= 200; i++ {
		d := time.Duration(i) * time.Millisecond
		r := latency.Request{APIKey: latency.APIProduce, RequestEnd: base + int64(i)*1e7, ResponseEnd: base + int64(i)*1e7 + int64(d), Wire: d, Service: d, Status: latency.Answered}
		b, _ := r.MarshalJSON()
		lines.Write(b)
		lines.WriteByte('\n')
	}
	b := makeBundle(t, lines.String(), bundle.Meta{Latency: &bundle.Latency{Source: "csv:x", SLO: 100 * time.Millisecond, Kind: "service",
		Counters: map[string]uint64{"kernel_drops": 3, "packets": 100, "holes": 0}},
		Clock: clock.Single(clock.Pair{Monotonic: 1e9, Realtime: base})})
	if err := report.WriteBundle(b, nil, nil); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(b.Path(bundle.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"records no capture span", "not been merged", "no merged profiles yet", `id="latency-heatmap"`, "filesystem ops: not collected", "Off-CPU intervals were not collected",
		"the latency source (csv:x) counted 3 kernel drops"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	r, err := report.Build(b, nil, nil, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if notes := strings.Join(r.Notes, "\n"); strings.Contains(notes, "packets") || strings.Contains(notes, "holes") {
		t.Errorf("a count of what was seen, or a zero loss, is noted as a loss:\n%s", notes)
	}
	if r.Latency.Requests != 200 || r.Latency.OverSLO != 100 || r.LatencyMap.Total != 200 {
		t.Errorf("stats %+v, heat map total %v", r.Latency, r.LatencyMap.Total)
	}
}

func TestReportBadRequests(t *testing.T) {
	b := makeBundle(t, `{"api_key":0,"status":"answered","response_end_ns":5}`+"\n"+`{"api_key":0,`+"\n",
		bundle.Meta{Start: 1, End: 2e9, Latency: &bundle.Latency{SLO: time.Millisecond, Kind: "service"}})
	err := report.WriteBundle(b, nil, nil)
	if err == nil || !strings.Contains(err.Error(), bundle.RequestsFile) {
		t.Errorf("corrupt requests.jsonl: %v, want an error naming it", err)
	}
	if _, serr := os.Stat(b.Path(bundle.ReportFile)); serr == nil {
		t.Error("a failed report left a report.html")
	}
	entries, _ := os.ReadDir(b.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".report-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
