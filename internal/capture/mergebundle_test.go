package capture

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/testdata"
)

// fixtureBundle makes a bundle of a shared async-profiler recording: the
// recording (copied into a temporary bundle), requests made from the
// workload's latency list (one request per 100 ms window, lasting its max
// latency), and an off-CPU interval, with the chunk header's clock pair.
func fixtureBundle(t *testing.T, name string) string {
	t.Helper()
	src := testdata.JFR(t, name+".jfr")
	dir := filepath.Join(t.TempDir(), "bundle")
	w, err := bundle.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.Path(bundle.RecordingFile), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := jfr.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.NextChunk()
	if err != nil {
		t.Fatal(err)
	}
	pair := clock.Pair{Monotonic: c.Header.StartTicks, Realtime: c.Header.StartNanos}
	r.Close()

	// Requests: the latency list's rows as one request each.
	lst, err := os.ReadFile(filepath.Join(testdata.Dir(t), "jfr", "workload", "latency", name+".latency.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := w.Create(bundle.RequestsFile)
	jw := latency.NewJSONLWriter(f)
	for _, line := range strings.Split(strings.TrimSpace(string(lst)), "\n")[1:] {
		var startMs, winMs, n, p50, p99, maxUs int64
		if _, err := fmtSscan(line, &startMs, &winMs, &n, &p50, &p99, &maxUs); err != nil {
			t.Fatal(err)
		}
		end := startMs*1e6 + winMs*1e6
		d := time.Duration(maxUs) * time.Microsecond
		jw.Write(&latency.Request{APIKey: latency.APIProduce, RequestEnd: end - int64(d), ResponseEnd: end, Wire: d, Service: d, Status: latency.Answered})
	}
	if err := jw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	f, _ = w.Create(bundle.OffCPUFile)
	ow := bundle.NewOffCPUWriter(f)
	ow.Write(&bundle.Interval{TID: 1, Thread: "kafka-scheduler-0", Start: uint64(pair.Monotonic), End: uint64(pair.Monotonic + 1e6),
		State: offcpu.Uninterruptible, Kernel: []bundle.Frame{{Name: "jbd2_log_wait_commit", Kind: bundle.KindKernel}}})
	if err := ow.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	meta := &bundle.Meta{
		Clock:    clock.Single(pair),
		Latency:  &bundle.Latency{Source: "csv:" + name, SLO: 20 * time.Millisecond, Kind: "service"},
		Profiler: &bundle.Profiler{Name: "async-profiler", File: bundle.RecordingFile, Clock: "monotonic"},
	}
	if err := w.Finish(meta); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fmtSscan(line string, v ...*int64) (int, error) {
	parts := strings.Split(line, ",")
	for i := range v {
		n, err := strconv.ParseInt(strings.TrimSpace(parts[i]), 10, 64)
		if err != nil {
			return i, err
		}
		*v[i] = n
	}
	return len(v), nil
}

func TestMergeBundle(t *testing.T) {
	dir := fixtureBundle(t, "asprof-wall-lock-monotonic")
	sum, err := MergeBundle(dir, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The workload's rows with max > 20 ms, merged when adjacent.
	if sum.Windows.Count == 0 || sum.Windows.Requests != 13 {
		t.Errorf("windows %+v, want the 13 slow rows", sum.Windows)
	}
	if len(sum.LockHotSpots) == 0 || !strings.HasSuffix(sum.LockHotSpots[0].Frame, "UnifiedLog.append") {
		t.Errorf("lock hot spots %+v", sum.LockHotSpots)
	}
	for _, name := range []string{bundle.SlowProfile, bundle.BaselineProfile, bundle.AllProfile, SlowFolded, BaselineFolded, BlameProfile, SummaryText, SummaryJSON} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("output %s: %v", name, err)
		}
	}
	// go tool pprof is the oracle that the profiles are valid.
	if out, err := exec.Command("go", "tool", "pprof", "-top", filepath.Join(dir, BlameProfile)).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("Type: blame")) {
		t.Errorf("go tool pprof -top blame.pb.gz: %v\n%.300s", err, out)
	}
	for _, name := range []string{bundle.SlowProfile, bundle.BaselineProfile, bundle.AllProfile} {
		out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=wall", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof -top %s: %v\n%s", name, err, out)
		}
		if !bytes.Contains(out, []byte("Type: wall")) {
			t.Errorf("pprof -top %s:\n%.500s", name, out)
		}
	}
	var js merge.Summary
	b, _ := os.ReadFile(filepath.Join(dir, SummaryJSON))
	if err := json.Unmarshal(b, &js); err != nil || js.Windows.Count != sum.Windows.Count {
		t.Errorf("summary.json: %v %+v", err, js.Windows)
	}
	folded, _ := os.ReadFile(filepath.Join(dir, SlowFolded))
	if !bytes.Contains(folded, []byte("[data-plane-kafka-request-handler];")) {
		t.Errorf("slow.folded lacks the pool root frame:\n%.300s", folded)
	}

	// Re-merge with an SLO above every request: nothing is slow.
	sum, err = MergeBundle(dir, MergeOptions{SLO: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Windows.Count != 0 || len(sum.TopFrames) != 0 {
		t.Errorf("with a 1s SLO: %+v", sum.Windows)
	}
}

func TestMergeBundleErrors(t *testing.T) {
	if _, err := MergeBundle(t.TempDir(), MergeOptions{}); err == nil || !strings.Contains(err.Error(), "meta.json") {
		t.Errorf("directory without meta.json: %v", err)
	}
	if _, err := MergeBundle(t.TempDir(), MergeOptions{Kind: "bogus"}); err == nil {
		t.Error("bogus latency kind: want an error")
	}
}
