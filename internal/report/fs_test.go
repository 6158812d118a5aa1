package report_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/report"
)

// TestReportFilesystemSection: a bundle with the filesystem lens's stream
// gets its tables and both heat maps, and the capture grid names the lens.
func TestReportFilesystemSection(t *testing.T) {
	const mono0 = int64(5e9)
	base := int64(1_700_000_000_000_000_000)
	clk := clock.Single(clock.Pair{Monotonic: mono0, Realtime: base})
	dir := t.TempDir() + "/b"
	w, err := bundle.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	seg := &bundle.FSFileInfo{Path: "/k/orders-0/00000000000000000000.log", Dev: "7:0", Topic: "orders", Partition: 0, Kind: "log"}
	f, err := w.Create(bundle.FSStreamFile)
	if err != nil {
		t.Fatal(err)
	}
	fw := bundle.NewFSWriter(f)
	var reqs []merge.FSRequest
	var lines strings.Builder
	for i := range 100 {
		at := mono0 + int64(i)*int64(100*time.Millisecond)
		d := 2 * time.Millisecond
		if i%10 == 0 { // every tenth request waits 80 ms behind a commit
			d = 80 * time.Millisecond
			must(t, fw.WriteJournal(&bundle.JournalEvent{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: uint32(i), Start: uint64(at), End: uint64(at) + uint64(90*time.Millisecond)}))
			must(t, fw.WriteOp(&bundle.FSOp{Op: "write", File: seg, TID: 9, Thread: "data-plane-kafka-request-handler-0", Bytes: 512, Start: uint64(at + 1e6), End: uint64(at + 1e6 + int64(75*time.Millisecond))}))
		}
		r := latency.Request{APIKey: latency.APIProduce, RequestEnd: clk.ToRealtime(at), ResponseEnd: clk.ToRealtime(at + int64(d)), Wire: d, Service: d, Status: latency.Answered}
		b, _ := r.MarshalJSON()
		lines.Write(b)
		lines.WriteByte('\n')
		reqs = append(reqs, merge.FSRequest{Start: at, End: at + int64(d), OverSLO: d > 65*time.Millisecond})
	}
	hist := make([]uint64, 28)
	hist[14], hist[26] = 90, 10
	must(t, fw.WriteHistogram(&bundle.FSHistogram{Op: "write", File: seg, Count: 100, SumNs: uint64(760 * time.Millisecond), Buckets: hist}))
	must(t, fw.Flush())
	f.Close()
	must(t, os.WriteFile(w.Path(bundle.RequestsFile), []byte(lines.String()), 0o644))
	meta := bundle.Meta{Clock: clk, Start: mono0, End: mono0 + int64(10*time.Second),
		Latency: &bundle.Latency{Source: "kafka:9092", SLO: 65 * time.Millisecond, Kind: "service"},
		FS: &bundle.FS{File: bundle.FSStreamFile, Min: time.Millisecond, Devices: []bundle.FSDevice{{Dev: "7:0", MountPoint: "/k", FSType: "ext4", Options: "rw,data=ordered"}},
			Counters: map[string]uint64{"events": 10, "drops": 2}}}
	must(t, w.Finish(&meta))
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	wb := latency.NewBuilder(65*time.Millisecond, latency.Service, 0)
	must(t, latency.ReadRequestsJSONL(strings.NewReader(lines.String()), func(r *latency.Request) error { wb.Add(r); return nil }))
	ws := wb.Build()
	for i := range ws.Windows {
		ws.Windows[i].Start, ws.Windows[i].End = clk.ToMonotonic(ws.Windows[i].Start), clk.ToMonotonic(ws.Windows[i].End)
	}
	ws.Clock = latency.Monotonic
	d, err := os.Open(b.Path(bundle.FSStreamFile))
	if err != nil {
		t.Fatal(err)
	}
	data, err := bundle.ReadFS(d)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	sum := &merge.Summary{FS: merge.SummarizeFS(data, meta.FS, reqs, ws, merge.FSOptions{})}
	if o := sum.FS.Overlap; o.Slow != 10 || o.SlowLongCommit != 10 || o.Within != 90 || o.WithinLongCommit != 0 {
		t.Fatalf("overlap = %+v", o)
	}
	must(t, report.WriteBundle(b, ws, sum))
	page, err := os.ReadFile(b.Path(bundle.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="fs-files"`, `id="fs-journal"`, `id="fs-slowest"`, "orders-0", "100% of over-SLO requests overlapped a journal commit",
		"eBPF syscall and journal tracepoints", "7:0 /k ext4 (rw,data=ordered)", "the filesystem lens counted 2 drops"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(string(page), "filesystem ops: not collected") {
		t.Error("report says the filesystem lens did not run")
	}
	// compare shows the lens: the summary's numbers, per bundle.
	js, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(b.Path(report.SummaryJSON), js, 0o644))
	cmp, err := report.Compare([]string{dir}, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fc := cmp.Columns[0].FS
	if fc == nil || fc.Commits != 10 || fc.LongCommits != 10 || fc.CommitMax != 90*time.Millisecond || fc.SlowWithLongCommit != 1 ||
		fc.WithinWithLongCommit != 0 || !strings.HasPrefix(fc.Filesystem, "ext4") {
		t.Errorf("compare's filesystem column: %+v", fc)
	}
	var text strings.Builder
	must(t, cmp.WriteText(&text))
	if !strings.Contains(text.String(), "100% (within 0%)") || !strings.Contains(text.String(), "90ms / 90ms") {
		t.Errorf("compare text:\n%s", text.String())
	}
	cells := regexp.MustCompile(`class="fs-heatmap" data-cells="(\d+)"`).FindAllStringSubmatch(string(page), -1)
	if len(cells) != 2 || cells[0][1] == "0" || cells[1][1] == "0" {
		t.Errorf("filesystem heat maps: %v", cells)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
