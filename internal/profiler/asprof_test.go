package profiler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach/jvmtest"
)

// TestAsyncProfiler drives a real async-profiler. It cannot be installed
// from the package registries here, so it runs when ASYNC_PROFILER_HOME
// names a release or a build.
func TestAsyncProfiler(t *testing.T) {
	t.Parallel()
	if os.Getenv(EnvHome) == "" {
		t.Skipf("%s not set: download a release from https://github.com/async-profiler/async-profiler/releases and point %s at it to run this test", EnvHome, EnvHome)
	}
	in, err := Locate("")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("async-profiler %s at %s", in.Version, in.Lib)
	j := jvmtest.Start(t, jvmtest.Config{})
	vm := openVM(t, j.PID)

	t.Run("start stop", func(t *testing.T) {
		s, err := Start(timeout(t), vm, testOptions(Auto, 2*time.Second, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if s.Profiler() != AsyncProfiler || !strings.Contains(s.Reason(), in.Home) {
			t.Fatalf("auto chose %s (%s), want async-profiler from %s", s.Profiler(), s.Reason(), in.Home)
		}
		if s.lib != in.Lib {
			t.Errorf("loaded %s, want the host's %s: the JVM shares the host's mount namespace", s.lib, in.Lib)
		}
		if st, err := s.Status(timeout(t)); err != nil || !strings.Contains(st, "running") {
			t.Fatalf("status: %q, %v", st, err)
		}
		// One async-profiler session per JVM: a second capture is told why not.
		if s2, err := Start(timeout(t), vm, testOptions(AsyncProfiler, time.Second, 2*time.Second)); err == nil {
			s2.Close()
			t.Error("second async-profiler session started")
		} else if !strings.Contains(err.Error(), "another async-profiler session") {
			t.Errorf("second session: %v, want the reason", err)
		} else {
			t.Logf("second session: %v", err)
		}
		time.Sleep(1500 * time.Millisecond)
		dst := filepath.Join(t.TempDir(), "rec.jfr")
		r, err := s.Stop(timeout(t), dst)
		if err != nil {
			t.Fatal(err)
		}
		if r.StoppedBySelf {
			t.Error("stopped by itself, want stopped by Stop")
		}
		counts := jfrSummary(t, dst)
		wantEvents(t, counts, "profiler.WallClockSample", "jdk.JavaMonitorEnter", "jdk.ThreadPark")
		if st, err := AsprofStatus(timeout(t), vm, s.lib); err != nil || !strings.Contains(st, "not active") {
			t.Errorf("status after Stop: %q, %v", st, err)
		}
		if _, err := os.Stat(vm.HostPath(s.log)); err == nil {
			t.Error("agent log left in the JVM's /tmp")
		}
		if r.Perfmap != "" {
			os.Remove(r.Perfmap)
		}
		// The recording says which options ran, in async-profiler's units.
		got := activeSettings(t, dst)
		for name, want := range map[string]string{"event": "wall", "interval": "10000000", "lock": "10000", "clock": "monotonic"} {
			if got[name] != want {
				t.Errorf("recorded setting %s = %q, want %q", name, got[name], want)
			}
		}
	})

	t.Run("stopped by itself", func(t *testing.T) {
		testStoppedBySelf(t, vm, AsyncProfiler)
	})

	t.Run("killed", func(t *testing.T) {
		testKilled(t, vm, AsyncProfiler, func(_, _, lib string) bool {
			st, err := AsprofStatus(timeout(t), vm, lib)
			if err != nil {
				t.Fatal(err)
			}
			return !strings.Contains(st, "not active")
		})
	})
}

// TestAsyncProfilerContainer loads async-profiler into a JVM whose mount
// namespace does not show the host's library: it must be copied into the
// JVM's /tmp.
func TestAsyncProfilerContainer(t *testing.T) {
	t.Parallel()
	if os.Getenv(EnvHome) == "" {
		t.Skipf("%s not set", EnvHome)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot create namespaces")
	}
	in, err := Locate("")
	if err != nil {
		t.Fatal(err)
	}
	j := jvmtest.Start(t, jvmtest.Config{Container: true})
	vm := openVM(t, j.PID)
	s, err := Start(timeout(t), vm, testOptions(AsyncProfiler, time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.lib, "/tmp/lockscope-asprof-") {
		t.Errorf("loaded %s, want a copy in the container's /tmp", s.lib)
	}
	if _, err := os.Stat(s.lib); err == nil && strings.HasPrefix(in.Lib, "/tmp/") {
		t.Logf("note: %s also exists on the host", s.lib)
	}
	time.Sleep(time.Second)
	dst := filepath.Join(t.TempDir(), "rec.jfr")
	r, err := s.Stop(timeout(t), dst)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, jfrSummary(t, dst), "profiler.WallClockSample", "jdk.JavaMonitorEnter")
	if r.Perfmap == "" || !strings.Contains(r.Perfmap, "/root/tmp/perf-1.map") {
		t.Errorf("perf map %q (%v), want the container's /tmp/perf-1.map", r.Perfmap, r.Warnings)
	}
}

// TestAsyncProfilerOtherUser profiles a JVM of another user: the agent's
// recording, log and status files are written by that user.
func TestAsyncProfilerOtherUser(t *testing.T) {
	t.Parallel()
	if os.Getenv(EnvHome) == "" {
		t.Skipf("%s not set", EnvHome)
	}
	recordOtherUser(t, AsyncProfiler, "profiler.WallClockSample", "jdk.ThreadPark")
}
