package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/loopfs"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/profiler"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: capture needs BPF and a packet socket (CI runs as root)")
	}
}

// TestCaptureEndToEnd: the demo broker with a stall inside its append lock,
// eight producers, a capture with the JDK Flight Recorder (async-profiler
// cannot be installed here), the live Kafka sniffer and the off-CPU
// collector. The summary must name the append lock first, the slow profile
// must show it far above the baseline, and nothing may stay in the JVM.
func TestCaptureEndToEnd(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The logs on a journalling filesystem, as a broker's would be.
	logs := loopfs.Mount(t, loopfs.Options{SizeMiB: 256})
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: logs + "/kafka-logs", Partitions: 3, StallMs: 150, StallEvery: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer demobroker.ProduceForTest(t, b.Addr(), "orders", 8, 600)()
	time.Sleep(2 * time.Second) // metadata, connections, JIT warm-up

	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	var progress strings.Builder
	rep, err := Run(ctx, Options{PID: b.Pid(), Duration: 8 * time.Second, SLO: 65 * time.Millisecond, Kind: "service",
		Latency: "kafka:" + b.Port(), Interface: "lo", Profiler: popts, MinBlock: time.Millisecond,
		RequireOffCPU: true, Out: dir, Version: "test", Progress: &progress})
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	var text strings.Builder
	rep.Summary.WriteText(&text)
	t.Logf("summary:\n%s", text.String())

	m := rep.Meta
	if m.Profiler == nil || m.Profiler.Name != string(profiler.JFR) || m.Ended != "duration" {
		t.Errorf("meta profiler %+v, ended %q", m.Profiler, m.Ended)
	}
	if m.Latency == nil || m.Latency.Requests < 1000 || m.Latency.OverSLO == 0 {
		t.Errorf("latency meta %+v: want thousands of requests, some over the SLO", m.Latency)
	}
	if m.OffCPU == nil || m.OffCPU.Counters["events"] == 0 {
		t.Errorf("off-CPU meta %+v", m.OffCPU)
	}
	s := rep.Summary
	if len(s.LockHotSpots) == 0 || s.LockHotSpots[0].Frame != "kafka.log.UnifiedLog.append" || s.LockHotSpots[0].Class != "java.lang.Object" {
		t.Errorf("first lock hot spot %+v, want kafka.log.UnifiedLog.append on java.lang.Object", s.LockHotSpots)
	}
	var appendOff *merge.FrameShare
	for i, f := range s.TopOffCPUFrames {
		if f.Frame == "kafka.log.UnifiedLog.append" {
			appendOff = &s.TopOffCPUFrames[i]
		}
	}
	if appendOff == nil || appendOff.Slow < 3*appendOff.Baseline || appendOff.Slow < 0.02 {
		t.Errorf("UnifiedLog.append in off-CPU time: %+v; want its slow share over 3x the baseline's", appendOff)
	}
	// Blame: the waiters' time is the holder's stall inside the lock.
	if len(s.BlameChains) == 0 {
		t.Fatal("no blame chains")
	}
	c := s.BlameChains[0]
	if c.Site != "kafka.log.UnifiedLog.append" || !slices.Contains(c.Activity, "kafka.log.UnifiedLog.stall") || c.Share < 0.6 {
		t.Errorf("first blame chain %q, want the append lock's waiting charged to the holder's stall", c.Sentence)
	}
	for _, name := range []string{bundle.SlowProfile, bundle.BaselineProfile, bundle.AllProfile} {
		out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=offcpu", filepath.Join(dir, name)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "_[k]") {
			t.Errorf("go tool pprof -top %s: %v\n%.400s", name, err, out)
		}
	}
	// Nothing lingers: no lockscope recording left in the JVM.
	vm, err := attach.Open(b.Pid(), attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	out, err := vm.Jcmd(ctx, "JFR.check")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "lockscope-") {
		t.Errorf("a lockscope recording is still in the JVM:\n%s", out)
	}
}

// TestCaptureTargetExits: the JVM dies mid-capture; the capture ends at
// once and still writes a bundle with what was collected.
func TestCaptureTargetExits(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go func() {
		time.Sleep(4 * time.Second)
		syscall.Kill(b.Pid(), syscall.SIGKILL)
	}()
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	var progress strings.Builder
	t0 := time.Now()
	rep, err := Run(ctx, Options{PID: b.Pid(), Duration: time.Minute, SLO: 65 * time.Millisecond, Kind: "service",
		Latency: "kafka:" + b.Port(), Interface: "lo", Profiler: popts, Out: dir, Progress: &progress})
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, progress.String())
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("capture took %v after the JVM died; want it to end within seconds", d)
	}
	if rep.Meta.Ended != "target exited" || !strings.Contains(progress.String(), "exited") {
		t.Errorf("ended %q, progress:\n%s", rep.Meta.Ended, progress.String())
	}
	if _, err := bundle.Open(dir); err != nil {
		t.Errorf("bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, bundle.OffCPUFile)); err != nil {
		t.Errorf("off-CPU intervals collected before the exit are missing: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := Options{PID: 1, Duration: time.Second, SLO: time.Millisecond, Kind: "wire", Latency: "kafka:9092", Out: "x",
		Profiler: profiler.DefaultOptions()}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]func(*Options){
		"no pid":           func(o *Options) { o.PID = 0 },
		"zero duration":    func(o *Options) { o.Duration = 0 },
		"no slo":           func(o *Options) { o.SLO = 0 },
		"bad kind":         func(o *Options) { o.Kind = "x" },
		"bad port":         func(o *Options) { o.Latency = "kafka:99999" },
		"unknown source":   func(o *Options) { o.Latency = "carrier-pigeon:1" },
		"source w/o arg":   func(o *Options) { o.Latency = "pcap" },
		"no output":        func(o *Options) { o.Out = "" },
		"negative padding": func(o *Options) { o.Pad = -1 },
	} {
		o := good
		bad(&o)
		if o.Validate() == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	o := good
	o.Latency = "none"
	if err := o.Validate(); err != nil {
		t.Errorf("latency none: %v", err)
	}
	if _, err := Run(context.Background(), Options{PID: 1 << 22, Duration: time.Second, SLO: time.Millisecond, Kind: "wire",
		Latency: "none", Out: t.TempDir() + "/b", Profiler: profiler.DefaultOptions()}); err == nil || !strings.Contains(err.Error(), "--pid") {
		t.Errorf("no such process: %v", err)
	}
	_ = fmt.Sprint
}

// TestCaptureFsyncInsideLockUnderJournalPressure: the demo broker fsyncs
// inside its append lock every 5 appends on an ext4 whose journal other
// writers load. The first blame chain must name the append lock and the
// holder's fsync.
func TestCaptureFsyncInsideLockUnderJournalPressure(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := loopfs.Mount(t, loopfs.Options{SizeMiB: 512, DirectIO: true})
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: logs + "/kafka-logs", Partitions: 3, FlushMessages: 5,
		PressureThreads: 3, PressureWriteKB: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer demobroker.ProduceForTest(t, b.Addr(), "orders", 8, 600)()
	time.Sleep(2 * time.Second)

	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	rep, err := Run(ctx, Options{PID: b.Pid(), Duration: 8 * time.Second, SLO: 20 * time.Millisecond, Kind: "service",
		Latency: "kafka:" + b.Port(), Interface: "lo", Profiler: popts, MinBlock: time.Millisecond,
		RequireOffCPU: true, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	rep.Summary.WriteText(&text)
	t.Logf("summary:\n%s", text.String())
	if len(rep.Summary.BlameChains) == 0 {
		t.Fatal("no blame chains")
	}
	c := rep.Summary.BlameChains[0]
	flush := slices.ContainsFunc(c.Activity, func(f string) bool {
		return f == "kafka.log.LogSegment.flush" || f == "sun.nio.ch.FileChannelImpl.force"
	})
	if c.Site != "kafka.log.UnifiedLog.append" || !flush {
		t.Errorf("first blame chain %q: want the append lock's waiting charged to the holder's fsync", c.Sentence)
	}
	checkFilesystemLens(t, rep, dir, logs)
}

// checkFilesystemLens: the capture's filesystem lens saw the broker's
// segment writes and syncs per partition on the loop device, the device's
// jbd2 commits, and the summary and report relate them to the requests.
func checkFilesystemLens(t *testing.T, rep *Report, dir, mnt string) {
	t.Helper()
	fs := rep.Summary.FS
	if fs == nil || rep.Meta.FS == nil {
		t.Fatalf("no filesystem lens in the summary or meta (warnings %q)", rep.Meta.Warnings)
	}
	var dev string
	for _, d := range rep.Meta.FS.Devices {
		if d.MountPoint == mnt && d.FSType == "ext4" {
			dev = d.Dev
		}
	}
	if dev == "" {
		t.Fatalf("meta names no ext4 device on %s: %+v", mnt, rep.Meta.FS.Devices)
	}
	writes, syncs := 0, 0
	for _, f := range fs.Files {
		if !strings.HasPrefix(f.Group, "orders-") {
			continue
		}
		switch {
		case (f.Op == "write" || f.Op == "pwrite64" || f.Op == "writev") && f.Kind == "log":
			writes += int(f.Count)
		case (f.Op == "fsync" || f.Op == "fdatasync") && f.Kind == "log":
			syncs += int(f.Count)
		}
	}
	if writes == 0 || syncs == 0 {
		t.Errorf("segment writes %d, syncs %d of the orders partitions: want both (files %+v)", writes, syncs, fs.Files)
	}
	commits := 0
	for _, j := range fs.Journal {
		if j.Dev == dev && j.Kind == "jbd2_commit" {
			commits = j.Count
		}
	}
	if commits == 0 {
		t.Errorf("no jbd2 commit on %s: %+v", dev, fs.Journal)
	}
	if fs.Overlap.Slow+fs.Overlap.Within == 0 || len(fs.Overlap.Devices) != 1 || fs.Overlap.Devices[0] != dev {
		t.Errorf("overlap %+v: want requests and the log device %s", fs.Overlap, dev)
	}
	if !strings.Contains(fs.Sentence, "over-SLO requests overlapped a journal commit") {
		t.Errorf("sentence %q", fs.Sentence)
	}
	page, err := os.ReadFile(filepath.Join(dir, bundle.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `id="fs-files"`) || !strings.Contains(string(page), `class="fs-heatmap"`) {
		t.Error("report.html has no filesystem tables or heat maps")
	}
}
