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
	switch role {
	case "sleep":
		ts := syscall.Timespec{Nsec: 50 * int64(time.Millisecond)}
		for range 10 {
			syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
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
	fmt.Println("done")
	return 0
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	tid   int
	stdin io.WriteCloser
	out   *bufio.Reader
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
	line, err := h.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "done" {
		t.Fatalf("helper: got %q, %v; want done", line, err)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
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
