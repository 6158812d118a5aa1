package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/profiler"
)

// The killed-capture test runs a capture in a child process (this test
// binary, re-executed) and kills it with SIGKILL.
const helperEnv = "LOCKSCOPE_CAPTURE_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	os.Exit(m.Run())
}

// runHelper captures as spec says: "PID LATENCY DIR SECONDS REQUIRE-OFFCPU",
// with the JDK Flight Recorder and a 2 s grace.
func runHelper(spec string) int {
	f := strings.Fields(spec)
	pid, _ := strconv.Atoi(f[0])
	secs, _ := strconv.Atoi(f[3])
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	popts.Grace = 2 * time.Second
	_, err := Run(context.Background(), Options{PID: pid, Duration: time.Duration(secs) * time.Second, SLO: 65 * time.Millisecond,
		Kind: "service", Latency: f[1], Interface: "lo", Profiler: popts, RequireOffCPU: f[4] == "true", Out: f[2], Progress: os.Stdout})
	if err != nil {
		fmt.Println("helper:", err)
		return 1
	}
	return 0
}

// progsOf lists the ids of the BPF programs a process holds, from the
// fdinfo of its file descriptors ("prog_id:" lines).
func progsOf(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, fd := range fds {
		b, err := os.ReadFile(fd)
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				if id, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

// TestCaptureKilled: SIGKILL of lockscope in the middle of a capture
// leaves no BPF program loaded and, once the duration and grace have
// passed, no recording running in the JVM; lockscope merge recovers the
// bundle it left, with the recording the profiler wrote in the JVM's /tmp
// once its deadline passed, and says it did.
func TestCaptureKilled(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer demobroker.ProduceForTest(t, b.Addr(), "orders", 4, 200)()
	dir := filepath.Join(t.TempDir(), "bundle")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d kafka:%s %s 6 true", helperEnv, b.Pid(), b.Port(), dir))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the capture has run for a few seconds (its streams are
	// written out every second), then kill it.
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), " 3s/6s") {
	}
	progs := progsOf(t, cmd.Process.Pid)
	if len(progs) == 0 {
		t.Fatal("the capture holds no BPF program while running")
	}
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// BPF programs go with the process's file descriptors.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := exec.Command("bpftool", "-j", "prog", "show").Output()
		if err != nil {
			t.Fatalf("bpftool prog show: %v (scripts/setup.sh installs bpftool)", err)
		}
		alive := 0
		for _, id := range progs {
			if strings.Contains(string(left), fmt.Sprintf(`"id":%d,`, id)) {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d BPF programs of the killed capture still loaded after 10s", alive)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The bundle is unfinished; merge recovers it, waiting for the
	// profiler to stop by itself and the JVM to write the recording.
	if _, err := bundle.Open(dir); !errors.Is(err, bundle.ErrUnfinished) {
		t.Fatalf("the killed capture's bundle: %v, want ErrUnfinished", err)
	}
	var progress strings.Builder
	sum, err := MergeBundle(dir, MergeOptions{Progress: &progress})
	t.Logf("merge of the killed capture's bundle:\n%s", progress.String())
	if err != nil {
		t.Fatalf("merging the killed capture's bundle: %v", err)
	}
	bd, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := bd.Meta
	head := fmt.Sprintf("recovered an unfinished capture (killed?): collected the JFR recording from /proc/%d/root/tmp/lockscope-", b.Pid())
	if !slices.ContainsFunc(m.Warnings, func(w string) bool { return strings.HasPrefix(w, head) }) {
		t.Errorf("warnings %q: want one starting %q", m.Warnings, head)
	}
	if !strings.Contains(progress.String(), head) {
		t.Errorf("merge did not say %q", head)
	}
	if m.Provisional || m.Ended != "killed" || m.End <= m.Start || m.Profiler == nil || m.Profiler.File != bundle.RecordingFile {
		t.Errorf("recovered meta: provisional %v, ended %q, %d..%d, profiler %+v", m.Provisional, m.Ended, m.Start, m.End, m.Profiler)
	}
	if !bd.Has(bundle.OffCPUFile) || m.Latency == nil || m.Latency.Requests == 0 {
		t.Errorf("the off-CPU stream (%v) or the requests (%+v) collected before the kill are missing", bd.Has(bundle.OffCPUFile), m.Latency)
	}
	if sum.Stats.Chunks == 0 || sum.Stats.WallSamples == 0 || sum.Stats.OffCPUIntervals == 0 {
		t.Errorf("summary stats %+v: want the recording's chunks and samples and the off-CPU intervals", sum.Stats)
	}
	for _, name := range []string{bundle.SlowProfile, bundle.BaselineProfile, bundle.AllProfile, SummaryText} {
		if !bd.Has(name) {
			t.Errorf("no %s after merging", name)
		}
	}
	if out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=wall", bd.Path(bundle.AllProfile)).CombinedOutput(); err != nil || !strings.Contains(string(out), "Type: wall") {
		t.Errorf("go tool pprof -top all.pb.gz: %v\n%.400s", err, out)
	}

	// The recording stops by itself after duration + grace (8 s from start).
	vm, err := attach.Open(b.Pid(), attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	check := func() string {
		s, err := vm.Jcmd(ctx, "JFR.check")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := check(); !strings.Contains(s, "lockscope-") {
		t.Logf("recording already gone right after the kill:\n%s", s)
	}
	time.Sleep(time.Until(killed.Add(9 * time.Second)))
	if s := check(); strings.Contains(s, "lockscope-") {
		t.Errorf("a lockscope recording still runs in the JVM after duration and grace:\n%s", s)
	}
	// The recovery moved the recording into the bundle: none is left.
	left, err := profiler.Leftovers(vm)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if strings.Contains(l.Path, fmt.Sprintf("lockscope-%d-", cmd.Process.Pid)) {
			t.Errorf("the killed capture's recording %s is still in the JVM's /tmp", l.Path)
		}
	}
}
