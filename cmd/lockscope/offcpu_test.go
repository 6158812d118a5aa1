package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func requireOffcpu(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: not root (eBPF needs CAP_BPF and CAP_PERFMON)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("skipping: no BTF at /sys/kernel/btf/vmlinux")
	}
}

// selectSleeper starts perl sleeping 20 × 50ms in select(2) after a
// delay long enough for the collector to attach, even on a loaded machine
// (1 s was not always: loading the programs took longer).
func selectSleeper(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("perl", "-e", "sleep 2; select(undef, undef, undef, 0.05) for 1..20")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting perl: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func runLockscope(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

func TestOffcpuPprof(t *testing.T) {
	requireOffcpu(t)
	pid := selectSleeper(t)
	path := filepath.Join(t.TempDir(), "offcpu.pb.gz")
	_, stderr, err := runLockscope(t, "offcpu", "--pid", fmt.Sprint(pid), "--duration", "3500ms", "-o", path)
	if err != nil {
		t.Fatalf("offcpu: %v\n%s", err, stderr)
	}
	t.Log(stderr)
	if !strings.Contains(stderr, "drops=0 kernel-stack-failures=0") {
		t.Errorf("summary line lacks the counters, or data was lost:\n%s", stderr)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var events, nanos int64
	for _, s := range p.Sample {
		if s.Label["thread"][0] != "perl" || s.NumLabel["tid"][0] != int64(pid) {
			t.Errorf("sample labels %v %v", s.Label, s.NumLabel)
		}
		if s.Label["state"][0] != "sleeping" {
			continue // a run-queue wait on the shared CPU
		}
		found := false
		for _, l := range s.Location {
			found = found || l.Line[0].Function.Name == "do_select"
		}
		if !found {
			t.Errorf("sample without do_select")
		}
		events += s.Value[0]
		nanos += s.Value[1]
	}
	if events != 20 || nanos < 950e6 || nanos > 1200e6 {
		t.Errorf("%d events, %dns; want 20 of 50ms", events, nanos)
	}
}

func TestOffcpuFolded(t *testing.T) {
	requireOffcpu(t)
	pid := selectSleeper(t)
	stdout, stderr, err := runLockscope(t, "offcpu", "--pid", fmt.Sprint(pid), "-d", "3500ms", "--format", "folded")
	if err != nil {
		t.Fatalf("offcpu: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(stdout, "perl;[sleeping];") || !strings.Contains(stdout, "do_select_[k]") {
		t.Errorf("folded output:\n%s", stdout)
	}
}

func TestOffcpuErrors(t *testing.T) {
	requireOffcpu(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"offcpu"}, `"pid" not set`},
		{[]string{"offcpu", "--pid", "4194304"}, "no process with pid 4194304"},
		{[]string{"offcpu", "--pid", "1", "--format", "svg"}, "invalid format"},
		{[]string{"offcpu", "--pid", "1", "--mode", "fast"}, "invalid mode"},
	} {
		_, _, err := runLockscope(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}
