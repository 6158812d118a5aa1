//go:build linux

package offcpu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/lockscope/lockscope/internal/symbolize"
)

// The test binary doubles as the measured process: TestMain runs a helper
// role when LOCKSCOPE_OFFCPU_HELPER names one, so that the measured threads
// do exactly what a test needs and nothing else.
func TestMain(m *testing.M) {
	if role := os.Getenv("LOCKSCOPE_OFFCPU_HELPER"); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(m.Run())
}

// runHelper prints its thread id, waits for a line on stdin (the collector
// is attached by then), does its work on that same thread and prints "done".
// Work uses raw system calls: the Go runtime neither hands the thread's P
// away nor parks the thread around them, so the only off-CPU intervals of
// this thread are the ones the test asks for.
func runHelper(role string) int {
	if role == "collector" {
		return runCollectorHelper()
	}
	runtime.LockOSThread()
	fmt.Printf("%d\n", syscall.Gettid())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 2
	}
	var windows [][2]int64
	switch role {
	case "sleep":
		// Each sleep's CLOCK_MONOTONIC window, read with raw calls too, so
		// that tests pick this thread's sleeps out of whatever else the
		// Go runtime makes it do around them (on a loaded machine, a
		// locked thread waits on a futex for its P after the blocking
		// read of "go"; that interval is real but not a sleep).
		ts := syscall.Timespec{Nsec: 50 * int64(time.Millisecond)}
		for range 10 {
			w := [2]int64{rawMonotonic(), 0}
			syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
			w[1] = rawMonotonic()
			windows = append(windows, w)
		}
	case "futex":
		// FUTEX_WAIT on a word nobody wakes, with a 200ms timeout.
		var word uint32
		ts := syscall.Timespec{Nsec: 200 * int64(time.Millisecond)}
		syscall.RawSyscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&word)), 0 /* FUTEX_WAIT */, 0,
			uintptr(unsafe.Pointer(&ts)), 0, 0)
	case "fsync":
		f, err := os.Create(os.Getenv("LOCKSCOPE_OFFCPU_FILE"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		buf := make([]byte, 64<<10)
		for i := range 20 {
			buf[0] = byte(i)
			if _, err := f.Write(buf); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			if err := f.Sync(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		f.Close()
	case "spin":
		// Run until killed; the caller only needs a live process.
		for {
			time.Sleep(time.Second)
		}
	default:
		return 2
	}
	for _, w := range windows {
		fmt.Printf("window %d %d\n", w[0], w[1])
	}
	fmt.Println("done")
	return 0
}

// rawMonotonic reads CLOCK_MONOTONIC without entering the Go runtime's
// system call path (the vDSO is not used, so it costs a real call).
func rawMonotonic() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	tid   int
	stdin io.WriteCloser
	out   *bufio.Reader
	// windows are the CLOCK_MONOTONIC [start, end] of each piece of work
	// the helper timed (the sleeps), in order.
	windows [][2]uint64
}

func startHelper(t *testing.T, role string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// No asynchronous preemption: its signals would interrupt the
	// helper's system calls and split its intervals.
	// Under -race, no sleep at exit: it would be one more interval.
	cmd.Env = append(os.Environ(), append(env, "LOCKSCOPE_OFFCPU_HELPER="+role, "GODEBUG=asyncpreemptoff=1",
		"GORACE=atexit_sleep_ms=0")...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading helper thread id: %v", err)
	}
	if h.tid, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("helper printed %q, want its thread id", line)
	}
	return h
}

// run releases the helper and waits for it to finish.
func (h *helper) run(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := h.out.ReadString('\n')
		if err != nil {
			t.Fatalf("helper: got %q, %v; want done", line, err)
		}
		var w [2]uint64
		if _, err := fmt.Sscanf(line, "window %d %d", &w[0], &w[1]); err == nil {
			h.windows = append(h.windows, w)
			continue
		}
		if strings.TrimSpace(line) != "done" {
			t.Fatalf("helper: got %q, want done", line)
		}
		break
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// inWindows returns, for each of the helper's timed windows, the intervals
// of its thread that overlap it, and logs the thread's other intervals.
func (h *helper) inWindows(t *testing.T, ivs []Interval) [][]Interval {
	t.Helper()
	per := make([][]Interval, len(h.windows))
	for _, iv := range ivs {
		if int(iv.TID) != h.tid {
			continue
		}
		hit := false
		for i, w := range h.windows {
			if iv.Start < w[1] && iv.End > w[0] {
				per[i] = append(per[i], iv)
				hit = true
			}
		}
		if !hit {
			t.Logf("interval of thread %d outside its timed work: %v %v, kernel %v",
				h.tid, iv.State, time.Duration(iv.Duration()), kernelNames(t, iv.Kernel))
		}
	}
	return per
}

// sleeps returns the one sleeping interval of each of the "sleep" helper's
// sleeps, and the indexes of sleeps that have none. More than one sleeping
// interval in a sleep's window fails the test: each nanosleep blocks once.
// Run-queue waits in a window (state R, preempted around the call) are
// real and left out.
func (h *helper) sleeps(t *testing.T, ivs []Interval) (sleeps []Interval, missing []int) {
	t.Helper()
	for i, in := range h.inWindows(t, ivs) {
		var s []Interval
		for _, iv := range in {
			if iv.State == Sleeping {
				s = append(s, iv)
			} else {
				t.Logf("sleep %d: also %v for %v", i, iv.State, time.Duration(iv.Duration()))
			}
		}
		switch len(s) {
		case 0:
			missing = append(missing, i)
		case 1:
			sleeps = append(sleeps, s[0])
		default:
			t.Errorf("sleep %d: %d sleeping intervals, want 1: %+v", i, len(s), s)
			sleeps = append(sleeps, s[0])
		}
	}
	if len(h.windows) != 10 {
		t.Fatalf("helper timed %d sleeps, want 10", len(h.windows))
	}
	return sleeps, missing
}

// requireBPF skips unless this process may load the collector.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: not root (loading BPF programs needs CAP_BPF and CAP_PERFMON)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("skipping: no BTF at /sys/kernel/btf/vmlinux")
	}
}

// collect starts a collector, runs work, then stops the collector and
// returns every interval it delivered and its counters.
func collect(t *testing.T, cfg Config, work func()) ([]Interval, Counters) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	var ivs []Interval
	got := make(chan struct{})
	go func() {
		defer close(got)
		for iv := range c.Intervals() {
			ivs = append(ivs, iv)
		}
	}()
	work()
	// Give intervals ended by the work's last switch-in time to be read.
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-got
	if err := c.Err(); err != nil {
		t.Fatalf("reading intervals: %v", err)
	}
	cnt, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("program %s: %v", c.Program(), cnt)
	return ivs, cnt
}

var kernelSyms *symbolize.Kernel

func kernelNames(t *testing.T, stack []uint64) []string {
	t.Helper()
	if kernelSyms == nil {
		k, err := symbolize.LoadKernel()
		if err != nil {
			t.Fatal(err)
		}
		kernelSyms = k
	}
	return kernelSyms.Stack(stack)
}

func hasFrame(names []string, want ...string) bool {
	for _, n := range names {
		for _, w := range want {
			if n == w || strings.HasPrefix(n, w+".") {
				return true
			}
		}
	}
	return false
}
