package continuous

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/pyroscope"
	"github.com/lockscope/lockscope/internal/pyroscope/pyroscopetest"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{
		Capture:   capture.Options{PID: 1, SLO: time.Millisecond, Kind: "service", Latency: "none", Profiler: profiler.DefaultOptions()},
		Pyroscope: pyroscope.Options{URL: "http://127.0.0.1:4040"},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod  func(*Options)
		want string
	}{
		"short period":    {func(o *Options) { o.Period = 10 * time.Millisecond }, "at least 1s"},
		"negative period": {func(o *Options) { o.Period = -time.Second }, "must be positive"},
		"no pid":          {func(o *Options) { o.Capture.PID = 0 }, "--pid"},
		"no pyroscope":    {func(o *Options) { o.Pyroscope.URL = "" }, "--pyroscope"},
		"bad label":       {func(o *Options) { o.Pyroscope.Labels = map[string]string{"slo_breach": "x"} }, "set by lockscope"},
		"negative flush":  {func(o *Options) { o.FlushTimeout = -1 }, "flush timeout"},
		"two gates": {func(o *Options) {
			o.Acquire = func(context.Context) (func(), error) { return func() {}, nil }
			o.AcquirePreemptible = func(context.Context, func()) (func(), error) { return func() {}, nil }
		}, "not both"},
	} {
		o := good
		tc.mod(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestDefaultLabels(t *testing.T) {
	host, _ := os.Hostname()
	l := map[string]string{}
	defaultLabels(l, "kafka:9093,9094")
	if l["host"] != host || l["broker"] != host+":9093" {
		t.Errorf("labels %v", l)
	}
	l = map[string]string{"broker": "3"}
	defaultLabels(l, "none")
	if l["broker"] != "3" {
		t.Errorf("user's broker label overridden: %v", l)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: continuous mode captures with BPF and a packet socket (CI runs as root)")
	}
}

// TestContinuousEndToEnd: the demo broker stalls inside its append lock
// now and then under eight producers; continuous mode with a 3 s period
// pushes to a test ingest endpoint. Period 2 is preempted through the
// capture gate and period 4 cut short by the context: all four must be
// pushed, with slo_breach true and false, the documented profile types and
// the host and broker labels; the gate is taken once per period and never
// twice at once; nothing stays in the JVM.
func TestContinuousEndToEnd(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir(), Partitions: 3, StallMs: 150, StallEvery: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer demobroker.ProduceForTest(t, b.Addr(), "orders", 8, 600)()
	time.Sleep(2 * time.Second) // metadata, connections, JIT warm-up

	srv := pyroscopetest.New(t)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu       sync.Mutex
		reports  []*capture.Report
		gate     int
		held     bool
		overlaps int
		preempt  func()
	)
	// Preempt period 2 and stop in period 4 a second after their profiler
	// started (starting it takes a while on a busy machine).
	started := &lineWatch{prefix: "profiling pid", on: func(n int) {
		mu.Lock()
		defer mu.Unlock()
		switch n {
		case 2:
			time.AfterFunc(time.Second, preempt)
		case 4:
			time.AfterFunc(time.Second, stop)
		}
	}}
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR // async-profiler cannot be installed here
	o := Options{
		Capture: capture.Options{PID: b.Pid(), SLO: 65 * time.Millisecond, Kind: "service", Latency: "kafka:" + b.Port(),
			Interface: "lo", Profiler: popts, MinBlock: time.Millisecond, RequireOffCPU: true, Version: "test", Progress: started},
		Period:    3 * time.Second,
		Pyroscope: pyroscope.Options{URL: srv.URL, Labels: map[string]string{"cluster": "demo"}},
		AcquirePreemptible: func(_ context.Context, cancel func()) (func(), error) {
			mu.Lock()
			defer mu.Unlock()
			gate++
			if held {
				overlaps++
			}
			held = true
			preempt = cancel
			return func() { mu.Lock(); held = false; mu.Unlock() }, nil
		},
		OnReport: func(r *capture.Report) {
			if _, err := os.Stat(filepath.Join(r.Dir, bundle.SlowProfile)); err != nil {
				t.Errorf("OnReport: the bundle is not there to read: %v", err)
			}
			mu.Lock()
			reports = append(reports, r)
			if !held {
				t.Error("OnReport called after the gate was released")
			}
			mu.Unlock()
		},
		Logf: t.Logf,
	}
	if err := Run(runCtx, o); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 4 || gate != 4 || overlaps != 0 || held {
		t.Fatalf("%d reports, gate taken %d times (%d overlapping, held at the end %v); want 4 periods, one gate each",
			len(reports), gate, overlaps, held)
	}
	for i, want := range []string{"duration", "interrupted", "duration", "interrupted"} {
		if e := reports[i].Meta.Ended; e != want {
			t.Errorf("period %d ended %q, want %s", i+1, e, want)
		}
	}
	for i, r := range reports {
		if _, err := os.Stat(r.Dir); err == nil {
			t.Errorf("period %d's bundle %s was not removed", i+1, r.Dir)
		}
	}
	host, _ := os.Hostname()
	seen := map[string]bool{}   // slo_breach + profile type
	periods := map[int64]bool{} // pushed periods by start
	for _, in := range srv.Ingests() {
		if in.App != pyroscope.DefaultAppName || in.Labels["host"] != host || in.Labels["broker"] != host+":"+b.Port() ||
			in.Labels["cluster"] != "demo" {
			t.Errorf("push %s %v", in.App, in.Labels)
		}
		seen[in.Labels["slo_breach"]+" "+in.ProfileType] = true
		periods[in.From.UnixNano()] = true
		if !in.Until.After(in.From) || in.Until.Sub(in.From) > 30*time.Second {
			t.Errorf("push %v..%v", in.From, in.Until)
		}
	}
	t.Logf("pushed: %d profiles over %d periods: %v", len(srv.Ingests()), len(periods), seen)
	if len(periods) != 4 {
		t.Errorf("profiles of %d periods pushed, want 4 (the preempted and the cut-short ones too)", len(periods))
	}
	for _, want := range []string{
		"true wall:wall:nanoseconds:wall:nanoseconds",
		"false wall:wall:nanoseconds:wall:nanoseconds",
		"true lock:lock:nanoseconds:lock:nanoseconds",
		"true switched_out:switched_out:nanoseconds:switched_out:nanoseconds",
		"false switched_out:switched_out:nanoseconds:switched_out:nanoseconds",
		"true blame:blame:nanoseconds:blame:nanoseconds",
	} {
		if !seen[want] {
			t.Errorf("no push of %s", want)
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

// lineWatch calls on with the count of lines starting with prefix written
// so far (capture's progress lines, whole lines per Write).
type lineWatch struct {
	mu     sync.Mutex
	prefix string
	n      int
	on     func(n int)
}

func (w *lineWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, w.prefix) {
			w.n++
			w.on(w.n)
		}
	}
	return len(b), nil
}

// TestContinuousJVMExits: the JVM dies during a period; Run says so and
// returns instead of retrying forever, with Pyroscope unreachable too.
func TestContinuousJVMExits(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	var periods int
	o := Options{
		Capture: capture.Options{PID: b.Pid(), SLO: 65 * time.Millisecond, Kind: "service", Latency: "kafka:" + b.Port(),
			Interface: "lo", Profiler: popts},
		Period:       3 * time.Second,
		Pyroscope:    pyroscope.Options{URL: "http://127.0.0.1:1", RetryMin: time.Millisecond, RetryMax: time.Millisecond},
		FlushTimeout: time.Second,
		OnReport: func(*capture.Report) {
			periods++
			if periods == 1 {
				// Inside the second period.
				time.AfterFunc(time.Second, func() { syscall.Kill(b.Pid(), syscall.SIGKILL) })
			}
		},
		Logf: t.Logf,
	}
	t0 := time.Now()
	err = Run(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("Run after the JVM died: %v, want an error saying it exited", err)
	}
	if d := time.Since(t0); d > 40*time.Second {
		t.Errorf("Run took %v; want it to end within seconds of the JVM's death", d)
	}
	if periods < 1 {
		t.Errorf("%d periods reported", periods)
	}
}

// TestRunNotAJVM: a pid that is not a JVM fails every period the same way,
// so Run returns at once instead of retrying every period.
func TestRunNotAJVM(t *testing.T) {
	srv := pyroscopetest.New(t)
	var logged []string
	o := Options{
		Capture:   capture.Options{PID: os.Getpid(), SLO: time.Millisecond, Kind: "service", Latency: "none", Profiler: profiler.DefaultOptions()},
		Period:    time.Second,
		Pyroscope: pyroscope.Options{URL: srv.URL},
		Logf:      func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, o)
	if !errors.Is(err, attach.ErrNotJVM) {
		t.Fatalf("Run on the test's own pid: %v, want %v", err, attach.ErrNotJVM)
	}
	if ctx.Err() != nil || srv.Requests() != 0 {
		t.Errorf("Run retried until the deadline or pushed (%d requests); logged %q", srv.Requests(), logged)
	}
}
