package capture

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/testdata"
)

const killedFixture = "asprof-wall-lock-monotonic"

// The lines a kill cut in the streams of killedBundle.
const (
	cutOffCPU  = `{"tid":1,"tgid":1,"thread":"kafka-sch`
	cutRequest = `{"correlation_id":7,"api_k`
)

// killedBundle makes the bundle a capture killed mid-way leaves: a
// provisional meta.json naming where the (dead) JVM wrote its recording,
// an off-CPU stream and live requests, each ending in a line cut by the
// kill. Times are around the fixture recording's start. It returns the
// bundle and the monotonic time of the last data in it.
func killedBundle(t *testing.T, remote, source string) (string, int64) {
	t.Helper()
	r, err := jfr.Open(testdata.JFR(t, killedFixture+".jfr"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.NextChunk()
	if err != nil {
		t.Fatal(err)
	}
	pair := clock.Pair{Monotonic: c.Header.StartTicks, Realtime: c.Header.StartNanos}
	r.Close()

	dir := filepath.Join(t.TempDir(), "bundle")
	w, err := bundle.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta := &bundle.Meta{Lockscope: "test", BootID: bootID(), Target: bundle.Target{PID: 1 << 22},
		Clock: clock.Mapping{Start: pair}, Start: pair.Monotonic, Requested: time.Minute,
		Latency:  &bundle.Latency{Source: source, SLO: 20 * time.Millisecond, Kind: "service"},
		OffCPU:   &bundle.OffCPU{Mode: "lazy", MinBlock: time.Millisecond, File: bundle.OffCPUFile},
		Profiler: &bundle.Profiler{Name: "async-profiler", Clock: "monotonic", Started: pair.Monotonic, Remote: remote, RemoteOnHost: true, Deadline: clock.Now() - 1},
	}
	if err := w.WriteProvisional(meta); err != nil {
		t.Fatal(err)
	}

	f, _ := w.Create(bundle.OffCPUFile)
	ow := bundle.NewOffCPUWriter(f)
	var last int64
	for i := int64(0); i < 3; i++ {
		start := pair.Monotonic + i*int64(time.Second)
		last = start + int64(50*time.Millisecond)
		ow.Write(&bundle.Interval{TID: 1, Thread: "kafka-scheduler-0", Start: uint64(start), End: uint64(last),
			State: offcpu.Uninterruptible, Kernel: []bundle.Frame{{Name: "jbd2_log_wait_commit", Kind: bundle.KindKernel}}})
	}
	ow.Flush()
	f.WriteString(cutOffCPU) // cut by the kill
	f.Close()

	f, _ = w.Create(bundle.RequestsFile)
	if strings.HasPrefix(source, "kafka:") {
		jw := latency.NewJSONLWriter(f)
		for i := int64(0); i < 10; i++ {
			d := time.Duration(5+i*5) * time.Millisecond // 5..50 ms: some over the SLO
			end := pair.Realtime + i*int64(100*time.Millisecond) + int64(time.Second)
			jw.Write(&latency.Request{APIKey: latency.APIProduce, RequestEnd: end - int64(d), ResponseEnd: end, Wire: d, Service: d, Status: latency.Answered})
		}
		jw.Flush()
		f.WriteString(cutRequest)
	}
	f.Close()
	return dir, last
}

// TestRecoverWithoutRecording: a killed capture whose recording cannot be
// found is merged from its off-CPU and latency data, its cut lines are
// dropped and counted, and the bundle's meta.json says what is missing.
func TestRecoverWithoutRecording(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "lockscope-1-0123456789ab.jfr")
	dir, last := killedBundle(t, remote, "kafka:9092")
	if _, err := bundle.Open(dir); !errors.Is(err, bundle.ErrUnfinished) {
		t.Fatalf("before recovery: %v, want ErrUnfinished", err)
	}
	var progress bytes.Buffer
	sum, err := MergeBundle(dir, MergeOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("merging the killed capture's bundle: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Meta
	want := "recovered an unfinished capture (killed?): no JFR recording found at " + remote + "; merged off-CPU and latency data only"
	if len(m.Warnings) == 0 || !strings.HasPrefix(m.Warnings[0], want) {
		t.Errorf("first warning %q, want it to start %q", m.Warnings, want)
	}
	for _, w := range []string{
		fmt.Sprintf("offcpu.jsonl ended in a line cut by the kill: dropped 1 partial line (%d bytes)", len(cutOffCPU)),
		fmt.Sprintf("requests.jsonl ended in a line cut by the kill: dropped 1 partial line (%d bytes)", len(cutRequest)),
	} {
		if !strings.Contains(strings.Join(m.Warnings, "\n"), w) {
			t.Errorf("warnings %q lack %q", m.Warnings, w)
		}
	}
	if !strings.Contains(progress.String(), want) {
		t.Errorf("progress does not say %q", want)
	}
	// The last interval (2.05 s) ends after the last request (1.9 s).
	if m.End != last || m.Clock.Validate() != nil || m.Ended != "killed" || m.Provisional || m.Profiler != nil {
		t.Errorf("meta end %d (want %d), clock %+v, ended %q, provisional %v, profiler %+v", m.End, last, m.Clock, m.Ended, m.Provisional, m.Profiler)
	}
	if m.Latency.Requests != 10 || m.Latency.OverSLO != 6 {
		t.Errorf("latency %+v, want 10 requests, 6 over the SLO", m.Latency)
	}
	if err := b.Verify(); err != nil {
		t.Error(err)
	}
	if sum.Windows.Count == 0 {
		t.Errorf("no slow windows: %+v", sum.Windows)
	}
	for _, name := range []string{bundle.SlowProfile, bundle.BaselineProfile, bundle.AllProfile, SummaryText, SummaryJSON} {
		if !b.Has(name) {
			t.Errorf("no %s", name)
		}
	}
	// A finished bundle merges again as any other.
	if _, err := MergeBundle(dir, MergeOptions{}); err != nil {
		t.Errorf("re-merge: %v", err)
	}
}

// TestRecoverRecording: the recording the profiler left where the JVM
// wrote it is moved into the bundle and merged.
func TestRecoverRecording(t *testing.T) {
	src := testdata.JFR(t, killedFixture+".jfr")
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(t.TempDir(), "lockscope-1-0123456789ab.jfr")
	os.WriteFile(remote, want, 0o644)
	dir, _ := killedBundle(t, remote, "kafka:9092")
	sum, err := MergeBundle(dir, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bundle.Open(dir)
	got, _ := os.ReadFile(b.Path(bundle.RecordingFile))
	if !bytes.Equal(got, want) {
		t.Errorf("the bundle's recording has %d bytes, want the JVM's %d", len(got), len(want))
	}
	if _, err := os.Stat(remote); err == nil {
		t.Error("the JVM's copy of the recording is still there")
	}
	head := "recovered an unfinished capture (killed?): collected the JFR recording from " + remote + "; merged it with off-CPU and latency data"
	if len(b.Meta.Warnings) == 0 || !strings.HasPrefix(b.Meta.Warnings[0], head) {
		t.Errorf("first warning %q, want it to start %q", b.Meta.Warnings, head)
	}
	if b.Meta.Profiler == nil || b.Meta.Profiler.File != bundle.RecordingFile {
		t.Errorf("profiler meta %+v", b.Meta.Profiler)
	}
	if len(sum.LockHotSpots) == 0 || !strings.HasSuffix(sum.LockHotSpots[0].Frame, "UnifiedLog.append") {
		t.Errorf("lock hot spots %+v: the recording was not merged", sum.LockHotSpots)
	}
}

// TestRecoverLatencyFile: a latency file is read at the end of a capture;
// for a killed one, the recovery reads it.
func TestRecoverLatencyFile(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "lat.csv")
	dir, _ := killedBundle(t, filepath.Join(t.TempDir(), "none.jfr"), "csv:"+csv)
	w, meta, err := bundle.OpenUnfinished(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = w
	var rows strings.Builder
	rows.WriteString("start_ns,duration_ms\n")
	for i := int64(0); i < 5; i++ {
		fmt.Fprintf(&rows, "%d,%d\n", meta.Clock.Start.Realtime+i*int64(time.Second), 10*i)
	}
	os.WriteFile(csv, []byte(rows.String()), 0o644)
	if _, err := MergeBundle(dir, MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := bundle.Open(dir)
	if b.Meta.Latency.Requests != 5 || b.Meta.Latency.OverSLO != 2 {
		t.Errorf("latency %+v, want the file's 5 requests, 2 over the SLO", b.Meta.Latency)
	}
	if strings.Contains(strings.Join(b.Meta.Warnings, "\n"), "requests.jsonl") {
		t.Errorf("warnings %q: the empty requests.jsonl of a file source is expected, not worth one", b.Meta.Warnings)
	}
}

func TestWholeRecording(t *testing.T) {
	whole := testdata.JFR(t, killedFixture+".jfr")
	if !wholeRecording(whole) {
		t.Errorf("%s: want whole", whole)
	}
	b, _ := os.ReadFile(whole)
	for _, n := range []int{0, 10, 68, len(b) / 2, len(b) - 1} {
		p := filepath.Join(t.TempDir(), "cut.jfr")
		os.WriteFile(p, b[:n], 0o644)
		if wholeRecording(p) {
			t.Errorf("cut at %d of %d bytes: want not whole", n, len(b))
		}
	}
	// async-profiler's header says nothing of the size until it stops.
	p := filepath.Join(t.TempDir(), "writing.jfr")
	provisional := append([]byte(nil), b...)
	copy(provisional[8:16], make([]byte, 8))
	os.WriteFile(p, provisional, 0o644)
	if wholeRecording(p) {
		t.Error("a chunk of size 0: want not whole")
	}
}
