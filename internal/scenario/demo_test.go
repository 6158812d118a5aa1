package scenario

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/loopfs"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Scenarios: each injects one cause of slow produce requests into the demo
// broker, in known windows where it can, captures it as an operator would
// (the JDK Flight Recorder, the off-CPU collector, the Kafka sniffer on the
// broker's port) and checks the verdict's top cause in summary.json.

// demoRun is one demo-broker scenario.
type demoRun struct {
	cfg demobroker.Config
	// fault runs beside the capture, if set, and is stopped after it.
	fault func(ctx context.Context, t *testing.T, pid int) (stop func())
	slo   time.Duration
	rate  int
	// capture is the capture's length (default 10 s).
	capture time.Duration
}

// run starts the broker and the producers, captures for 10 s and returns
// the summary as summary.json has it.
func (r demoRun) run(t *testing.T) *merge.Summary {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: the capture needs BPF and a packet socket (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if r.cfg.LogDir == "" {
		r.cfg.LogDir = filepath.Join(t.TempDir(), "logs")
	}
	if r.cfg.Partitions == 0 {
		r.cfg.Partitions = 3
	}
	b, err := demobroker.Start(ctx, r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if r.rate == 0 {
		r.rate = 600
	}
	defer demobroker.ProduceForTest(t, b.Addr(), "orders", 8, r.rate)()
	time.Sleep(2 * time.Second) // metadata, connections, JIT warm-up
	if r.fault != nil {
		defer r.fault(ctx, t, b.Pid())()
	}
	if r.slo == 0 {
		r.slo = 65 * time.Millisecond
	}
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	var progress strings.Builder
	if r.capture == 0 {
		r.capture = 10 * time.Second
	}
	_, err = capture.Run(ctx, capture.Options{PID: b.Pid(), Duration: r.capture, SLO: r.slo, Kind: "service",
		Latency: "kafka:" + b.Port(), Interface: "lo", Profiler: popts, MinBlock: time.Millisecond,
		RequireOffCPU: true, Out: dir, Version: "test", Progress: &progress})
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, progress.String())
	}
	if fw := b.FaultWindows(); len(fw) > 0 {
		t.Logf("fault windows (monotonic): %v", fw)
	}
	return readSummary(t, dir)
}

// readSummary reads a bundle's summary.json and logs its summary.txt.
func readSummary(t *testing.T, dir string) *merge.Summary {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(dir, capture.SummaryText))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary.txt:\n%s", text)
	raw, err := os.ReadFile(filepath.Join(dir, capture.SummaryJSON))
	if err != nil {
		t.Fatal(err)
	}
	var s merge.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Verdict == nil {
		t.Fatal("summary.json has no verdict")
	}
	return &s
}

// top returns the verdict's first finding, failing unless it stands out.
func top(t *testing.T, s *merge.Summary) verdict.Finding {
	t.Helper()
	v := s.Verdict
	if v.Status != verdict.Found || len(v.Findings) == 0 {
		t.Fatalf("verdict %s: %s", v.Status, v.Answer)
	}
	return v.Findings[0]
}

// TestScenarioDemoLockStall: the holder of a partition's append lock sleeps
// 150 ms every 200 appends; handlers queue on the monitor.
func TestScenarioDemoLockStall(t *testing.T) {
	s := demoRun{cfg: demobroker.Config{StallMs: 150, StallEvery: 200}}.run(t)
	f := top(t, s)
	if f.Kind != verdict.Lock || f.Java != "java.lang.Thread.sleep" || !strings.Contains(f.App, "UnifiedLog.stall") ||
		!strings.Contains(f.Via, "UnifiedLog.append") {
		t.Errorf("top cause %+v, want the lock holder's sleep in UnifiedLog.stall, reached through the lock taken in UnifiedLog.append", f.Cause)
	}
}

// TestScenarioDemoHandoff: one kafka-log-writer thread does the appends,
// fed through a queue, and sleeps in them; handlers wait on futures.
func TestScenarioDemoHandoff(t *testing.T) {
	s := demoRun{cfg: demobroker.Config{StallMs: 150, StallEvery: 200, AppendMode: "handoff"}}.run(t)
	f := top(t, s)
	if f.Kind != verdict.Handoff || f.Thread != "kafka-log-writer" || !strings.Contains(f.App, "UnifiedLog.stall") ||
		!strings.Contains(f.Via, "CompletableFuture") {
		t.Errorf("top cause %+v, want the log writer's sleep in UnifiedLog.stall, reached through a CompletableFuture", f.Cause)
	}
}

// TestScenarioDemoJournal: the broker fsyncs inside the append lock every
// few appends, on a loop-mounted ext4 whose journal a neighbour loads in
// windows (1.5 s on, 2 s off): Allegro's cause.
func TestScenarioDemoJournal(t *testing.T) {
	logs := loopfs.Mount(t, loopfs.Options{SizeMiB: 512, DirectIO: true})
	s := demoRun{cfg: demobroker.Config{LogDir: filepath.Join(logs, "kafka-logs"), FlushMessages: 5},
		fault: cycling(func(int) Fault { return JournalPressureBulk(logs, 2, 64) })}.run(t)
	f := top(t, s)
	if f.Kind != verdict.Filesystem || !strings.HasPrefix(f.Kernel, "jbd2") && !strings.Contains(f.Syscall, "sync") {
		t.Errorf("top cause %+v, want the filesystem (a journal commit or a sync)", f.Cause)
	}
}

// TestScenarioDemoGC: an allocation storm in a 128 MiB serial-collected heap,
// in windows. Its young pauses take 50–150 ms, so the SLO is 40 ms, and
// the capture 16 s: with 65 ms and 10 s, a CI run had only four windows
// over the SLO and a quiet run two, too few for alignment to tell.
func TestScenarioDemoGC(t *testing.T) {
	s := demoRun{cfg: demobroker.Config{GCStormMBs: 400, GCStormRetainMB: 64, FaultOn: 1500 * time.Millisecond, FaultOff: 2 * time.Second,
		JVMArgs: []string{"-Xmx128m", "-Xms128m", "-XX:+UseSerialGC"}}, capture: 16 * time.Second, slo: 40 * time.Millisecond}.run(t)
	f := top(t, s)
	if f.Kind != verdict.GC || f.Pauses == 0 {
		t.Errorf("top cause %+v (%d pauses), want stop-the-world GC pauses", f.Cause, f.Pauses)
	}
}

// cycling runs a fault on a schedule beside the capture: 1.5 s on, 2 s off.
func cycling(f func(pid int) Fault) func(ctx context.Context, t *testing.T, pid int) func() {
	return func(ctx context.Context, t *testing.T, pid int) func() {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			ws, err := Cycle(cctx, Schedule{First: time.Second, On: 1500 * time.Millisecond, Off: 2 * time.Second}, f(pid))
			if err != nil {
				t.Errorf("fault: %v", err)
			}
			t.Logf("fault windows: %d", len(ws))
		}()
		return func() { cancel(); <-done }
	}
}

// TestScenarioDemoCPUHogs: 64 busy processes beside the broker on a
// two-CPU machine, in windows: each of its threads' wakeups waits behind
// them in the run queue (the scheduler shares fairly, so a hop waits a few
// ms per hog ahead of it). They must outweigh what the machine runs
// besides: CI runs other test packages at the same time. A loaded machine
// makes slow windows of its own outside the hogs' periods, so the capture
// is long enough (16 s, four or five periods) for the alignment to tell;
// in 10 s a run beside stress-ng had six windows and p=0.03.
func TestScenarioDemoCPUHogs(t *testing.T) {
	s := demoRun{slo: 50 * time.Millisecond, capture: 16 * time.Second, fault: cycling(func(int) Fault { return CPUHogs(64) })}.run(t)
	if f := top(t, s); f.Kind != verdict.CPU {
		t.Errorf("top cause %+v, want waiting for a CPU", f.Cause)
	}
}

// TestScenarioDemoCgroupQuota: the broker's threads in a cgroup limited to
// a fifth of a CPU, in windows, as a Kubernetes CPU limit would.
func TestScenarioDemoCgroupQuota(t *testing.T) {
	s := demoRun{fault: cycling(func(pid int) Fault { return CgroupQuota(pid, 20*time.Millisecond, 100*time.Millisecond) })}.run(t)
	if f := top(t, s); f.Kind != verdict.Throttling {
		t.Errorf("top cause %+v, want cgroup CPU throttling", f.Cause)
	}
}
