package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lockscope/lockscope/internal/doctor"
)

func runDoctorCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"doctor"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestDoctorCommand runs doctor on this machine's root filesystem with an
// experiment that lockscope compare itself wrote.
func TestDoctorCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: doctor reads root-only files")
	}
	dir := t.TempDir()
	var inputs []string
	for name, slowMs := range map[string]int{"ext4-ordered": 3000, "xfs": 30} {
		var b strings.Builder
		b.WriteString("start_ms,latency_ms\n")
		for i := range 1000 {
			lat := 4
			if i%50 == 0 {
				lat = slowMs
			}
			fmt.Fprintf(&b, "%d,%d\n", 1735812000000+i*10, lat)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, "csv:"+p)
	}
	experiment := filepath.Join(dir, doctor.ExperimentFile)
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"compare", "--slo", "65ms", "--format", "json", "-o", experiment}, inputs...))
	if err := root.Execute(); err != nil {
		t.Fatalf("compare: %v", err)
	}

	out, err := runDoctorCmd(t, "--no-jvm", "--log-dirs", dir, "--experiment", dir)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"PASS  btf ", "PASS  off-cpu collector ", "log dir ", "mounted at /",
		"experiment ", "ext4-ordered: 1000 requests", "2.00% over 65ms (20)", "fewest requests over the SLO in lockscope's own experiment: xfs",
		" passed, ", " failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Every check line is "STATUS  name  detail" with the details aligned.
	col := -1
	for line := range strings.Lines(strings.TrimSpace(out)) {
		if line == "\n" || strings.Contains(line, " passed, ") {
			break
		}
		st, rest, _ := strings.Cut(line, "  ")
		if st != "PASS" && st != "INFO" && st != "WARN" && st != "FAIL" {
			t.Errorf("line without a status: %q", line)
		}
		name := strings.TrimLeft(rest, " ")
		i := strings.Index(name, "  ")
		for i >= 0 && i+1 < len(name) && name[i+1] == ' ' {
			i++
		}
		c := len(line) - len(name) + i + 1
		if col < 0 {
			col = c
		} else if c != col {
			t.Errorf("detail column %d, want %d: %q", c, col, line)
		}
	}
}

// TestDoctorCommandFails checks the exit status and the JSON of a run with
// a failed check: a pid no process can have.
func TestDoctorCommandFails(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	out, err := runDoctorCmd(t, "--pid", pid, "--json", "--skip-bpf-load")
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("want an error with exit code 1, got %v", err)
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	n, _ := strconv.Atoi(pid)
	found := false
	for _, c := range r.Checks {
		if c.Name == "jvm" && c.Status == doctor.Fail && strings.Contains(c.Detail, "no such process") && c.Fix != "" {
			found = true
		}
	}
	if r.PID != n || !found {
		t.Errorf("want a failed jvm check for pid %d:\n%s", n, out)
	}

	if _, err := runDoctorCmd(t, "--pid", "-3"); err == nil || !strings.Contains(err.Error(), "must be positive") {
		t.Errorf("negative pid: %v", err)
	}
	if _, err := runDoctorCmd(t, "extra"); err == nil {
		t.Error("an argument was accepted")
	}
}
