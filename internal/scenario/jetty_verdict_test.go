package scenario

import (
	"context"
	"io"
	"net/http"
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

// jettyRun is a scenario on Debian's jetty9 (or tomcat10) serving the txlog servlet: the
// request threads hand each record to the one txlog-sync thread through a
// queue and wait on a future while it writes and fdatasyncs. The load
// generator's latency log (a headerless start_ns,duration_ns CSV, as load
// generators write) arrives after the capture and is joined with
// merge --latency, as a client's log would be.
type jettyRun struct {
	fault   func(ctx context.Context, t *testing.T, j *Server) (stop func())
	slo     time.Duration
	jvmArgs []string
	// tomcat runs the webapp on Debian's tomcat10 instead of jetty9.
	tomcat bool
}

// onPID adapts a fault on the server's pid to a jettyRun's.
func onPID(f func(ctx context.Context, t *testing.T, pid int) func()) func(context.Context, *testing.T, *Server) func() {
	return func(ctx context.Context, t *testing.T, j *Server) func() { return f(ctx, t, j.PID) }
}

// cacheStorm is a fault of the server's own: two clients refreshing its
// cache (/cache?mb=32, an allocation storm in its heap) back to back.
func cacheStorm(j *Server) Fault {
	url := strings.TrimSuffix(j.URL, "/append") + "/cache?mb=32"
	return func() (func() error, error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		for range 2 {
			go func() {
				defer func() { done <- struct{}{} }()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		return func() error { cancel(); <-done; <-done; return nil }, nil
	}
}

func (r jettyRun) run(t *testing.T, data string) *merge.Summary {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: the capture needs BPF (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var j *Server
	if r.tomcat {
		j = StartTomcat(t, TomcatOptions{DataDir: data, JVMArgs: r.jvmArgs}).Server
	} else {
		j = StartJetty(t, JettyOptions{DataDir: data, JVMArgs: r.jvmArgs}).Server
	}
	loadDone := make(chan []Request, 1)
	go func() {
		reqs, err := Load(ctx, LoadOptions{URL: j.URL, Workers: 8, Rate: 400, Duration: 15 * time.Second})
		if err != nil {
			t.Errorf("load: %v", err)
		}
		loadDone <- reqs
	}()
	time.Sleep(2 * time.Second) // connections, JIT warm-up
	if r.fault != nil {
		defer r.fault(ctx, t, j)()
	}
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	var progress strings.Builder
	if _, err := capture.Run(ctx, capture.Options{PID: j.PID, Duration: 10 * time.Second, SLO: r.slo, Kind: "service",
		Latency: "none", Profiler: popts, MinBlock: time.Millisecond, RequireOffCPU: true, Out: dir, Version: "test",
		Progress: &progress}); err != nil {
		t.Fatalf("capture: %v\n%s", err, progress.String())
	}
	reqs := <-loadDone
	sum := Summarize(reqs)
	t.Logf("load: %d requests, %d failed", sum.Requests, sum.Failed)
	csv := filepath.Join(t.TempDir(), "latency.csv")
	if err := WriteCSV(csv, reqs, false); err != nil {
		t.Fatal(err)
	}
	if _, err := capture.MergeBundle(dir, capture.MergeOptions{Latency: "csv:" + csv, SLO: r.slo}); err != nil {
		t.Fatal(err)
	}
	return readSummary(t, dir)
}

// TestScenarioJettyJournal: neighbours load the journal of the ext4 the
// txlog is on, in windows; the verdict must name the sync thread's
// filesystem wait, reached through the hand-off.
func TestScenarioJettyJournal(t *testing.T) {
	data := loopfs.Mount(t, loopfs.Options{SizeMiB: 512, DirectIO: true})
	s := jettyRun{slo: 65 * time.Millisecond, fault: onPID(cycling(func(int) Fault { return JournalPressureBulk(data, 2, 64) }))}.run(t, data)
	f := top(t, s)
	if f.Kind != verdict.Filesystem || f.Thread != "txlog-sync" || !strings.Contains(f.Java, "force") && f.Syscall != "fdatasync" {
		t.Errorf("top cause %+v, want the txlog-sync thread's fdatasync", f.Cause)
	}
	if !strings.Contains(f.Via, "CompletableFuture") || len(f.Waiters) == 0 || !strings.HasPrefix(f.Waiters[0], "qtp") {
		t.Errorf("top cause reached by %v through %q, want jetty's qtp threads through a CompletableFuture", f.Waiters, f.Via)
	}
}

// TestScenarioJettyCPUHogs: 64 busy processes beside jetty, in windows
// (see TestScenarioDemoCPUHogs).
func TestScenarioJettyCPUHogs(t *testing.T) {
	data := t.TempDir()
	s := jettyRun{slo: 50 * time.Millisecond, fault: onPID(cycling(func(int) Fault { return CPUHogs(64) }))}.run(t, data)
	if f := top(t, s); f.Kind != verdict.CPU {
		t.Errorf("top cause %+v, want waiting for a CPU", f.Cause)
	}
}

// TestScenarioJettyControl: no fault. The txlog is in memory (tmpfs) and
// the SLO is 200 ms: other tests running at the same time on the machine
// (CI runs packages in parallel) load its disk and CPUs, and a journal
// commit they slow down is a real cause, which the verdict rightly names.
// What the control checks is that nothing is invented from what is left.
func TestScenarioJettyControl(t *testing.T) {
	data := shmDir(t)
	s := jettyRun{slo: 200 * time.Millisecond}.run(t, data)
	if v := s.Verdict; v.Status == verdict.Found {
		t.Errorf("a cause claimed with no fault injected: %s", v.Answer)
	}
}

// TestScenarioDemoControl: the demo broker with no fault, its logs in
// memory, SLO 200 ms (see TestScenarioJettyControl).
func TestScenarioDemoControl(t *testing.T) {
	s := demoRun{cfg: demobroker.Config{LogDir: filepath.Join(shmDir(t), "logs")}, slo: 200 * time.Millisecond}.run(t)
	if v := s.Verdict; v.Status == verdict.Found {
		t.Errorf("a cause claimed with no fault injected: %s", v.Answer)
	}
}

// TestScenarioJettyGC: the server's own cache refreshes allocate in bursts
// (windows) in a 128 MiB serial-collected heap.
func TestScenarioJettyGC(t *testing.T) {
	data := t.TempDir()
	r := jettyRun{slo: 65 * time.Millisecond, jvmArgs: []string{"-Xms128m", "-Xmx128m", "-XX:+UseSerialGC"}}
	r.fault = func(ctx context.Context, t *testing.T, j *Server) func() {
		return cycling(func(int) Fault { return cacheStorm(j) })(ctx, t, j.PID)
	}
	s := r.run(t, data)
	if f := top(t, s); f.Kind != verdict.GC || f.Pauses == 0 {
		t.Errorf("top cause %+v (%d pauses), want stop-the-world GC pauses", f.Cause, f.Pauses)
	}
}

// TestScenarioJettyCgroupQuota: jetty's threads in a cgroup limited to a
// fifth of a CPU, in windows.
func TestScenarioJettyCgroupQuota(t *testing.T) {
	data := t.TempDir()
	s := jettyRun{slo: 65 * time.Millisecond, fault: onPID(cycling(func(pid int) Fault {
		return CgroupQuota(pid, 20*time.Millisecond, 100*time.Millisecond)
	}))}.run(t, data)
	if f := top(t, s); f.Kind != verdict.Throttling {
		t.Errorf("top cause %+v, want cgroup CPU throttling", f.Cause)
	}
}

// shmDir is a directory in /dev/shm (tmpfs), removed after the test.
func shmDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "lockscope-scenario-")
	if err != nil {
		t.Fatalf("no /dev/shm for an in-memory directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Tomcat 10: the same webapp on a second server, whose idle request
// threads wait in its own TaskQueue.

// TestScenarioTomcatJournal: as TestScenarioJettyJournal, on tomcat10.
func TestScenarioTomcatJournal(t *testing.T) {
	data := loopfs.Mount(t, loopfs.Options{SizeMiB: 512, DirectIO: true})
	s := jettyRun{tomcat: true, slo: 65 * time.Millisecond, fault: onPID(cycling(func(int) Fault { return JournalPressureBulk(data, 2, 64) }))}.run(t, data)
	f := top(t, s)
	if f.Kind != verdict.Filesystem || f.Thread != "txlog-sync" || !strings.Contains(f.Via, "CompletableFuture") ||
		len(f.Waiters) == 0 || !strings.HasPrefix(f.Waiters[0], "http-nio") {
		t.Errorf("top cause %+v (waiters %v), want the txlog-sync thread's fdatasync, waited for by tomcat's http-nio exec threads through a CompletableFuture", f.Cause, f.Waiters)
	}
}

// TestScenarioTomcatGC: as TestScenarioJettyGC, on tomcat10.
func TestScenarioTomcatGC(t *testing.T) {
	r := jettyRun{tomcat: true, slo: 65 * time.Millisecond, jvmArgs: []string{"-Xms128m", "-Xmx128m", "-XX:+UseSerialGC"}}
	r.fault = func(ctx context.Context, t *testing.T, j *Server) func() {
		return cycling(func(int) Fault { return cacheStorm(j) })(ctx, t, j.PID)
	}
	s := r.run(t, t.TempDir())
	if f := top(t, s); f.Kind != verdict.GC || f.Pauses == 0 {
		t.Errorf("top cause %+v (%d pauses), want stop-the-world GC pauses", f.Cause, f.Pauses)
	}
}

// TestScenarioTomcatCgroupQuota: as TestScenarioJettyCgroupQuota, on tomcat10.
func TestScenarioTomcatCgroupQuota(t *testing.T) {
	s := jettyRun{tomcat: true, slo: 65 * time.Millisecond, fault: onPID(cycling(func(pid int) Fault {
		return CgroupQuota(pid, 20*time.Millisecond, 100*time.Millisecond)
	}))}.run(t, t.TempDir())
	if f := top(t, s); f.Kind != verdict.Throttling {
		t.Errorf("top cause %+v, want cgroup CPU throttling", f.Cause)
	}
}
