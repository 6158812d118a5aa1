package cpustat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	s, err := New(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if b.T <= a.T || b.HostTotal <= a.HostTotal || b.HostBusy < a.HostBusy || b.ProcTicks <= a.ProcTicks {
		t.Errorf("samples do not advance: %+v then %+v", a, b)
	}
	if _, err := New(1 << 30); err == nil {
		t.Error("a pid that does not exist was accepted")
	}
}

// TestThrottledCgroup: a busy process in a cgroup v1 cpu group limited to a
// tenth of a CPU is throttled, and the sampler sees its quota and the
// throttling grow.
func TestThrottledCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: making a cgroup needs root (CI runs as root)")
	}
	root := v1CPUMount("/proc/self/mountinfo")
	if root == "" {
		t.Skip("no cgroup v1 cpu controller on this host (the scenario tests cover cgroup v2 through the fault injector)")
	}
	dir := filepath.Join(root, "lockscope-cpustat-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		busy.Process.Kill()
		busy.Wait()
		os.Remove(dir)
	}()
	for f, v := range map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "10000", "cgroup.procs": strconv.Itoa(busy.Process.Pid)} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(busy.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Read()
	time.Sleep(500 * time.Millisecond)
	b, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if b.Cgroup != dir || b.QuotaUs != 10000 || b.PeriodUs != 100000 {
		t.Errorf("sample %+v, want cgroup %s with quota 10000/100000", b, dir)
	}
	if b.Throttled <= a.Throttled || b.ThrottledNs <= a.ThrottledNs {
		t.Errorf("not throttled: %+v then %+v", a, b)
	}
	t.Logf("throttled %v in 500ms, %d of %d periods", time.Duration(b.ThrottledNs-a.ThrottledNs), b.Throttled-a.Throttled, b.Periods-a.Periods)
}
