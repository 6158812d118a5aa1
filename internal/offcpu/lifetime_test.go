//go:build linux

package offcpu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// ids returns the kernel ids of the collector's programs and links.
func (c *Collector) ids() (progs []ebpf.ProgramID, links []link.ID, err error) {
	for _, p := range []*ebpf.Program{c.objs.Switch, c.objs.Waking} {
		info, err := p.Info()
		if err != nil {
			return nil, nil, err
		}
		id, _ := info.ID()
		progs = append(progs, id)
	}
	for _, l := range c.links {
		info, err := l.Info()
		if err != nil {
			return nil, nil, err
		}
		links = append(links, info.ID)
	}
	return progs, links, nil
}

// waitGone waits until no program or link with these ids exists (the
// kernel frees them asynchronously once the last fd is closed).
func waitGone(t *testing.T, progs []ebpf.ProgramID, links []link.ID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var alive []string
		for _, id := range progs {
			if p, err := ebpf.NewProgramFromID(id); err == nil {
				p.Close()
				alive = append(alive, fmt.Sprintf("program %d", id))
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("program %d: %v", id, err)
			}
		}
		for _, id := range links {
			if l, err := link.NewFromID(id); err == nil {
				l.Close()
				alive = append(alive, fmt.Sprintf("link %d", id))
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("link %d: %v", id, err)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still attached: %s", strings.Join(alive, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCloseDetaches(t *testing.T) {
	requireBPF(t)
	h := startHelper(t, "spin")
	for _, p := range []Program{TPBTF, RawTP} {
		c, err := Start(context.Background(), Config{PIDs: []int{h.cmd.Process.Pid}, Program: p})
		if err != nil {
			t.Fatal(err)
		}
		progs, links, err := c.ids()
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		if len(progs) != 2 || len(links) != 2 {
			t.Fatalf("%s: %d programs, %d links, want 2 and 2", p, len(progs), len(links))
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		waitGone(t, progs, links)
	}
}

// A collector process killed with SIGKILL runs no Close, yet leaves
// nothing attached: every link is owned by a file descriptor.
func TestKilledCollectorDetaches(t *testing.T) {
	requireBPF(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKSCOPE_OFFCPU_HELPER=collector", fmt.Sprintf("LOCKSCOPE_OFFCPU_TARGET=%d", os.Getpid()))
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	var progs []ebpf.ProgramID
	var links []link.ID
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("reading collector ids: %v", err)
		}
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "attached" {
			break
		}
		if len(f) != 2 {
			t.Fatalf("collector printed %q", line)
		}
		id, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		if f[0] == "prog" {
			progs = append(progs, ebpf.ProgramID(id))
		} else {
			links = append(links, link.ID(id))
		}
	}
	if len(progs) != 2 || len(links) != 2 {
		t.Fatalf("%d programs, %d links, want 2 and 2", len(progs), len(links))
	}
	// Still attached while it runs.
	for _, id := range links {
		l, err := link.NewFromID(id)
		if err != nil {
			t.Fatalf("link %d of the running collector: %v", id, err)
		}
		l.Close()
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, progs, links)
}

// runCollectorHelper is the helper role "collector": it attaches to the
// test process, prints its ids and waits to be killed.
func runCollectorHelper() int {
	pid, _ := strconv.Atoi(os.Getenv("LOCKSCOPE_OFFCPU_TARGET"))
	c, err := Start(context.Background(), Config{PIDs: []int{pid}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	progs, links, err := c.ids()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, id := range progs {
		fmt.Println("prog", id)
	}
	for _, id := range links {
		fmt.Println("link", id)
	}
	fmt.Println("attached")
	for range c.Intervals() {
	}
	return 0
}

func TestStartErrors(t *testing.T) {
	requireBPF(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no such pid", Config{PIDs: []int{1 << 22}}, "no process with pid"},
		{"kernel thread", Config{PIDs: []int{kthreadd(t)}}, "kernel thread"},
		{"self", Config{PIDs: []int{os.Getpid()}}, "itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Start(context.Background(), tc.cfg)
			if err == nil {
				c.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// kthreadd returns the pid of kthreadd (2 on Linux).
func kthreadd(t *testing.T) int {
	b, err := os.ReadFile("/proc/2/comm")
	if err != nil || strings.TrimSpace(string(b)) != "kthreadd" {
		t.Skip("skipping: pid 2 is not kthreadd here")
	}
	return 2
}
