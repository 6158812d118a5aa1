package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/attach/jvmtest"
	"github.com/lockscope/lockscope/internal/profiler"
)

func runJVMCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestJVMCommand(t *testing.T) {
	j := jvmtest.Start(t, jvmtest.Config{})
	pid := strconv.Itoa(j.PID)

	out, err := runJVMCommand(t, "jvm", pid)
	if err != nil {
		t.Fatalf("jvm %s: %v\n%s", pid, err, out)
	}
	for _, want := range []string{"JDK 17", "PreserveFramePointer = false", "DebugNonSafepoints", "request-handler-*", "cpu-spinner"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A capture in progress shows as a recording.
	vm, err := attach.Open(j.PID, attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	o := profiler.DefaultOptions()
	o.Profiler, o.Duration, o.Grace = profiler.JFR, 30*time.Second, 2*time.Second
	s, err := profiler.Start(context.Background(), vm, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	out, err = runJVMCommand(t, "jvm", "--json", "--threads", pid)
	if err != nil {
		t.Fatalf("jvm --json: %v\n%s", err, out)
	}
	var r jvmReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("jvm --json: %v\n%s", err, out)
	}
	if r.PID != j.PID || r.Info == nil || r.Info.Feature < 17 {
		t.Errorf("report %+v", r)
	}
	if len(r.Recordings) != 1 || !strings.Contains(r.Recordings[0], s.Name()) {
		t.Errorf("recordings %q, want the one named %s", r.Recordings, s.Name())
	}
	handlers := 0
	for _, th := range r.Info.Threads {
		if strings.HasPrefix(th.Name, "request-handler-") && th.HostTID > 0 {
			handlers++
		}
	}
	if handlers != 4 {
		t.Errorf("%d request-handler threads with host tids, want 4", handlers)
	}

	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Wait()
	defer sleep.Process.Kill()
	for _, tt := range []struct{ arg, want string }{
		{"x", "positive process id"},
		{strconv.Itoa(sleep.Process.Pid), "not a HotSpot JVM"},
	} {
		if _, err := runJVMCommand(t, "jvm", tt.arg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("jvm %s: got %v, want an error saying %q", tt.arg, err, tt.want)
		}
	}
}

func TestTIDRange(t *testing.T) {
	if got := tidRange([]int{104, 101, 102, 103, 110, 7}); got != "7,101-104,110" {
		t.Errorf("tidRange = %q", got)
	}
	g := groupThreads([]attach.Thread{{Name: "handler-1", HostTID: 5}, {Name: "C2 CompilerThread0", HostTID: 3}, {Name: "handler-2", HostTID: 6}})
	if len(g) != 2 || g[0].name != "handler-*" || len(g[0].tids) != 2 || g[1].name != "C2 CompilerThread*" {
		t.Errorf("groupThreads = %+v", g)
	}
}

func TestNoFlightRecorder(t *testing.T) {
	for jdk, want := range map[string]bool{"8.0_252": true, "8.0_402": false, "17.0.15": false} {
		feature := 8
		if strings.HasPrefix(jdk, "17") {
			feature = 17
		}
		if got := noFlightRecorder(&attach.Info{JDK: jdk, Feature: feature}); got != want {
			t.Errorf("noFlightRecorder(%s) = %v, want %v", jdk, got, want)
		}
	}
}
