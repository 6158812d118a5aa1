//go:build linux

package offcpu

import (
	"strings"
	"testing"
	"time"
)

// Ten 50ms sleeps of one thread are exactly ten intervals of 50±5ms in
// nanosleep. An exact count also shows the collector does not wake itself
// into the picture.
func TestSleepIntervals(t *testing.T) {
	requireBPF(t)
	for _, p := range []Program{TPBTF, RawTP} {
		t.Run(string(p), func(t *testing.T) {
			h := startHelper(t, "sleep")
			ivs, cnt := collect(t, Config{PIDs: []int{h.cmd.Process.Pid}, Program: p}, func() { h.run(t) })
			var sleeps []Interval
			for _, iv := range ivs {
				if int(iv.TID) != h.tid {
					continue
				}
				if iv.State != Sleeping {
					// Run-queue waits on a shared CPU are real and
					// reported, but are not the sleeps counted here.
					t.Logf("other interval of the sleeper: %v %v", iv.State, time.Duration(iv.Duration()))
					continue
				}
				sleeps = append(sleeps, iv)
			}
			if len(sleeps) != 10 {
				t.Fatalf("got %d sleeping intervals of thread %d, want 10: %+v", len(sleeps), h.tid, sleeps)
			}
			for i, iv := range sleeps {
				d := time.Duration(iv.Duration())
				if d < 45*time.Millisecond || d > 55*time.Millisecond {
					t.Errorf("interval %d lasted %v, want 50±5ms", i, d)
				}
				names := kernelNames(t, iv.Kernel)
				if !hasFrame(names, "do_nanosleep", "hrtimer_nanosleep") {
					t.Errorf("interval %d: no nanosleep frame in %v", i, names)
				}
				if int(iv.TGID) != h.cmd.Process.Pid {
					t.Errorf("interval %d: tgid %d, want %d", i, iv.TGID, h.cmd.Process.Pid)
				}
				if iv.Thread == "" {
					t.Errorf("interval %d: no thread name", i)
				}
			}
			t.Logf("sleep stack: %s", strings.Join(kernelNames(t, sleeps[0].Kernel), ";"))
			if cnt.Drops != 0 || cnt.StateFailures != 0 || cnt.Malformed != 0 {
				t.Errorf("counters: %v", cnt)
			}
		})
	}
}
