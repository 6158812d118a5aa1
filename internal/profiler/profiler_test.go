package profiler

import (
	"bufio"
	"cmp"
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
	"github.com/lockscope/lockscope/internal/attach/jvmtest"
)

// helperEnv makes the test binary a lockscope stand-in that starts a
// capture and waits to be killed: "pid kind duration grace".
const helperEnv = "LOCKSCOPE_PROFILER_TEST_HELPER"

func TestMain(m *testing.M) {
	if args := os.Getenv(helperEnv); args != "" {
		if err := runHelper(args); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		select {} // until SIGKILL
	}
	os.Exit(m.Run())
}

func runHelper(args string) error {
	f := strings.Fields(args)
	if len(f) != 4 {
		return fmt.Errorf("helper arguments %q: want pid kind duration grace", args)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return err
	}
	kind := f[1]
	duration, err := time.ParseDuration(f[2])
	if err != nil {
		return err
	}
	grace, err := time.ParseDuration(f[3])
	if err != nil {
		return err
	}
	vm, err := attach.Open(pid, attach.DefaultOptions())
	if err != nil {
		return err
	}
	o := testOptions(Kind(kind), duration, grace)
	s, err := Start(context.Background(), vm, o)
	if err != nil {
		return err
	}
	// "-" keeps the fields in place for async-profiler, which has no name.
	fmt.Printf("started %s %s %s\n", cmp.Or(s.Name(), "-"), s.RemoteFile(), cmp.Or(s.lib, "-"))
	return nil
}

func testOptions(kind Kind, duration, grace time.Duration) Options {
	o := DefaultOptions()
	o.Profiler = kind
	o.Duration = duration
	o.Grace = grace
	return o
}

func openVM(t *testing.T, pid int) *attach.VM {
	t.Helper()
	vm, err := attach.Open(pid, attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jfrSummary counts events per type with the JDK's own reader, the oracle
// until internal/jfr reads recordings.
func jfrSummary(t *testing.T, file string) map[string]int {
	t.Helper()
	out, err := exec.Command("jfr", "summary", file).CombinedOutput()
	if err != nil {
		t.Fatalf("jfr summary %s: %v: %s", file, err, out)
	}
	counts := map[string]int{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 3 && strings.Contains(f[0], ".") {
			if n, err := strconv.Atoi(f[1]); err == nil {
				counts[f[0]] = n
			}
		}
	}
	return counts
}

func wantEvents(t *testing.T, counts map[string]int, types ...string) {
	t.Helper()
	for _, typ := range types {
		if counts[typ] == 0 {
			t.Errorf("recording has no %s events (counts: %v)", typ, counts)
		}
	}
}

// lockscopeRecordings returns what JFR.check lists of recordings lockscope
// started and that still run.
func runningRecording(t *testing.T, vm *attach.VM, name string) bool {
	t.Helper()
	out, err := vm.Jcmd(context.Background(), "JFR.check")
	if err != nil {
		t.Fatalf("JFR.check: %v", err)
	}
	for line := range strings.Lines(out) {
		if strings.Contains(line, "name="+name+" ") && strings.Contains(line, "(running)") {
			return true
		}
	}
	return false
}

// TestJFR runs the Flight Recorder fallback in one JVM: a capture stopped
// by lockscope, one closed on an error path, one whose lockscope is killed.
func TestJFR(t *testing.T) {
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{})
	vm := openVM(t, j.PID)

	t.Run("start stop", func(t *testing.T) {
		kind := JFR
		if _, err := Locate(""); errors.Is(err, ErrNoAsyncProfiler) {
			kind = Auto // must fall back, and say so
		}
		o := testOptions(kind, 2*time.Second, 2*time.Second)
		begin := time.Now()
		s, err := Start(timeout(t), vm, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("JFR.start took %v: %s", time.Since(begin), s.Command())
		if s.Profiler() != JFR {
			t.Fatalf("profiler %s, want jfr", s.Profiler())
		}
		if kind == Auto && !strings.Contains(s.Reason(), "not installed") {
			t.Errorf("auto fell back without saying why: %q", s.Reason())
		}
		if !runningRecording(t, vm, s.Name()) {
			t.Fatalf("JFR.check does not list %s as running", s.Name())
		}
		time.Sleep(1500 * time.Millisecond)
		dst := filepath.Join(t.TempDir(), "rec.jfr")
		begin = time.Now()
		r, err := s.Stop(timeout(t), dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("stop+collect+perfmap took %v", time.Since(begin))
		if r.StoppedBySelf {
			t.Error("stopped by itself, want stopped by Stop")
		}
		if !strings.HasPrefix(r.Version, "JDK 1") {
			t.Errorf("version %q, want the JDK's", r.Version)
		}
		if runningRecording(t, vm, s.Name()) {
			t.Error("recording still running after Stop")
		}
		if r.End.Monotonic <= r.Start.Monotonic || r.End.Realtime <= r.Start.Realtime {
			t.Errorf("clock pairs not increasing: %+v %+v", r.Start, r.End)
		}
		wantEvents(t, jfrSummary(t, dst), "jdk.JavaMonitorEnter", "jdk.ThreadPark", "jdk.ThreadSleep",
			"jdk.FileForce", "jdk.ExecutionSample", "jdk.ActiveRecording", "jdk.ThreadStart")
		for _, p := range []string{s.RemoteFile(), "/tmp/lockscope-" + s.id + ".jfc"} {
			if _, err := os.Stat(vm.HostPath(p)); err == nil {
				t.Errorf("%s left in the JVM's file system", p)
			}
		}
		if r.Perfmap == "" {
			t.Errorf("no perf map: %v", r.Warnings)
		} else if b, err := os.ReadFile(r.Perfmap); err != nil || !strings.Contains(string(b), "Busy") {
			t.Errorf("perf map %s lacks the test program's methods (%v)", r.Perfmap, err)
		} else {
			os.Remove(r.Perfmap)
		}
	})

	t.Run("close", func(t *testing.T) {
		s, err := Start(timeout(t), vm, testOptions(JFR, 30*time.Second, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if runningRecording(t, vm, s.Name()) {
			t.Error("recording still running after Close")
		}
		if _, err := os.Stat(vm.HostPath(s.RemoteFile())); err == nil {
			t.Error("Close left the recording behind")
		}
	})

	t.Run("stopped by itself", func(t *testing.T) {
		testStoppedBySelf(t, vm, JFR)
	})

	t.Run("killed", func(t *testing.T) {
		testKilled(t, vm, JFR, func(name, remote, _ string) bool { return runningRecording(t, vm, name) })
	})
}

// testStoppedBySelf lets a capture outlive its duration and grace: the
// profiler stops by itself, and Stop still collects a complete recording.
func testStoppedBySelf(t *testing.T, vm *attach.VM, kind Kind) {
	s, err := Start(timeout(t), vm, testOptions(kind, time.Second, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	dst := filepath.Join(t.TempDir(), "rec.jfr")
	r, err := s.Stop(timeout(t), dst)
	if err != nil {
		t.Fatal(err)
	}
	if !r.StoppedBySelf {
		t.Error("StoppedBySelf = false after duration and grace passed")
	}
	wantEvents(t, jfrSummary(t, dst), "jdk.JavaMonitorEnter")
	if r.Perfmap != "" {
		os.Remove(r.Perfmap)
	}
}

// testKilled starts a capture from a child process, kills it with SIGKILL
// mid-capture and checks that the profiler stops by itself once the
// duration and grace have passed, leaving a complete recording.
func testKilled(t *testing.T, vm *attach.VM, kind Kind, running func(name, remote, lib string) bool) {
	const duration, grace = 2 * time.Second, 2 * time.Second
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s %s %s", helperEnv, vm.PID, kind, duration, grace))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	started := time.Now()
	cmd.Process.Kill()
	cmd.Wait()
	f := strings.Fields(line)
	name, remote, lib := f[1], f[2], ""
	if len(f) > 3 {
		lib = f[3]
	}
	t.Cleanup(func() { os.Remove(vm.HostPath(remote)) })
	if !running(name, remote, lib) {
		t.Fatal("profiler not running right after lockscope was killed: the test would prove nothing")
	}
	deadline := started.Add(duration + grace + 20*time.Second)
	for running(name, remote, lib) {
		if time.Now().After(deadline) {
			t.Fatalf("profiler still running %v after lockscope was killed", time.Since(started))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("profiler stopped by itself %v after lockscope was killed (duration %v + grace %v)", time.Since(started).Round(10*time.Millisecond), duration, grace)
	host := vm.HostPath(remote)
	left, err := Leftovers(vm)
	if err != nil || !slices.ContainsFunc(left, func(l Leftover) bool { return l.Path == remote && l.Host == host }) {
		t.Errorf("Leftovers = %+v, %v; want %s among them", left, err, remote)
	}
	var counts map[string]int
	for range 20 { // the JDK may still be writing the file it just closed
		if _, err := os.Stat(host); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	counts = jfrSummary(t, host)
	if counts["jdk.JavaMonitorEnter"] == 0 {
		t.Errorf("the recording left behind has no lock events: %v", counts)
	}
}

// TestJFROtherUser records a JVM of another user: the settings it reads
// and the recording it writes cross the user boundary.
func TestJFROtherUser(t *testing.T) {
	t.Parallel()
	recordOtherUser(t, JFR, "jdk.JavaMonitorEnter", "jdk.ThreadPark")
}

// recordOtherUser records a JVM run as lockscope-test with profiler kind
// for a second and checks the recording has the event types.
func recordOtherUser(t *testing.T, kind Kind, events ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot start a JVM as another user")
	}
	j := jvmtest.Start(t, jvmtest.Config{User: "lockscope-test"})
	vm := openVM(t, j.PID)
	s, err := Start(timeout(t), vm, testOptions(kind, time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	dst := filepath.Join(t.TempDir(), "rec.jfr")
	r, err := s.Stop(timeout(t), dst)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, jfrSummary(t, dst), events...)
	if r.Perfmap != "" {
		os.Remove(r.Perfmap)
	}
}

// TestJFRContainer records a JVM in its own pid and mount namespaces with a
// private /tmp: the settings must be written, and the recording fetched,
// through /proc/PID/root.
func TestJFRContainer(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot create namespaces")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	j := jvmtest.Start(t, jvmtest.Config{Container: true})
	vm := openVM(t, j.PID)
	s, err := Start(timeout(t), vm, testOptions(JFR, time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.RemoteFile()); err == nil {
		t.Fatalf("%s visible on the host: the container's /tmp is not private", s.RemoteFile())
	}
	time.Sleep(time.Second)
	dst := filepath.Join(t.TempDir(), "rec.jfr")
	r, err := s.Stop(timeout(t), dst)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, jfrSummary(t, dst), "jdk.JavaMonitorEnter", "jdk.ThreadPark")
	if !strings.HasSuffix(r.Perfmap, "/root/tmp/perf-1.map") {
		t.Errorf("perf map %q (%v), want the container's /tmp/perf-1.map", r.Perfmap, r.Warnings)
	}
}

// TestJFRJVMExits: the JVM exits (SIGTERM) during the recording. The
// recording it wrote as it exited is collected, even from a private /tmp
// whose mount namespace died with the JVM, and nothing is left behind.
func TestJFRJVMExits(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot create namespaces")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	j := jvmtest.Start(t, jvmtest.Config{Container: true})
	vm := openVM(t, j.PID)
	s, err := Start(timeout(t), vm, testOptions(JFR, 10*time.Second, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := syscall.Kill(j.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; j.Alive() && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if j.Alive() {
		t.Fatal("the JVM did not exit on SIGTERM")
	}
	dst := filepath.Join(t.TempDir(), "rec.jfr")
	r, err := s.Stop(timeout(t), dst)
	if err != nil {
		t.Fatalf("the recording the JVM wrote as it exited was not collected: %v", err)
	}
	if len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "exited") {
		t.Errorf("warnings %q: want one saying the JVM exited", r.Warnings)
	}
	wantEvents(t, jfrSummary(t, dst), "jdk.JavaMonitorEnter", "jdk.ThreadPark")
	if s.tmp != nil {
		t.Error("the JVM's /tmp is still held open after Stop")
	}
}

// TestJFRStartCancelled: a capture cancelled while the JVM is still
// starting its first recording (JFR's own start-up takes hundreds of ms)
// must not leave the recording running: the JFR.start reached the JVM even
// though its answer was never read.
func TestJFRStartCancelled(t *testing.T) {
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{})
	vm := openVM(t, j.PID)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	s, err := Start(ctx, vm, testOptions(JFR, 30*time.Second, 2*time.Second))
	if err == nil {
		t.Logf("JFR started within 60 ms: closing it as a capture would")
		s.Close()
	} else {
		t.Logf("start: %v", err)
	}
	out, err := vm.Jcmd(context.Background(), "JFR.check")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "lockscope-") && strings.Contains(out, "(running)") {
		t.Errorf("a lockscope recording is still running after the cancelled start:\n%s", out)
	}
}
