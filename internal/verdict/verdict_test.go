package verdict

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// ledger builds a 20 s ledger of 10 ms bins with slow windows of 100 ms
// every 2 s, and causes whose series the test shapes.
func ledger(causes map[Cause]func(bin int, slow bool) float32) (*Ledger, time.Duration, time.Duration) {
	const bins = 2000
	l := &Ledger{Bin: 10e6, Bins: bins, Slow: make([]float32, bins), OffCPU: true}
	for i := range bins {
		if i%200 >= 50 && i%200 < 60 {
			l.Slow[i] = 1
		}
	}
	for c, f := range causes {
		e := &Evidence{Cause: c, Series: make([]float32, bins), Waiters: map[string]int64{"handler": 1}}
		for i := range bins {
			v := f(i, l.Slow[i] == 1)
			e.Series[i] = v
			if l.Slow[i] == 1 {
				e.Slow += int64(v)
			} else {
				e.Base += int64(v)
			}
		}
		l.Evidence = append(l.Evidence, e)
	}
	slow := 10 * 100 * time.Millisecond
	return l, slow, 20*time.Second - slow
}

func TestAlignedCauseStandsOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fsync := Cause{Kind: Filesystem, Thread: "txlog-sync", Java: "sun.nio.ch.FileChannelImpl.force", Syscall: "fdatasync",
		Kernel: "jbd2_log_wait_commit", Via: "CompletableFuture"}
	cpu := Cause{Kind: CPU}
	l, slow, base := ledger(map[Cause]func(int, bool) float32{
		// 8 threads waiting for the sync in the windows, a little outside.
		fsync: func(i int, s bool) float32 {
			if s {
				return 8 * 10e6
			}
			return float32(rng.IntN(2)) * 1e6
		},
		// Run-queue waits everywhere, the same rate.
		cpu: func(int, bool) float32 { return float32(rng.IntN(4)) * 1e6 },
	})
	v := Decide(Input{Ledger: l, SlowTime: slow, BaseTime: base, Windows: 10})
	if v.Status != Found || len(v.Findings) == 0 {
		t.Fatalf("status %s, answer %q", v.Status, v.Answer)
	}
	f := v.Findings[0]
	if f.Kind != Filesystem || !f.StandsOut || f.Share < 0.9 {
		t.Errorf("top finding %+v, want the filesystem standing out with most of the excess", f)
	}
	for _, want := range []string{"txlog-sync", "FileChannelImpl.force", "fdatasync", "jbd2_log_wait_commit", "CompletableFuture", "handler"} {
		if !strings.Contains(v.Answer, want) {
			t.Errorf("answer %q does not name %s", v.Answer, want)
		}
	}
	for _, f := range v.Findings[1:] {
		if f.StandsOut {
			t.Errorf("%s stands out too: %+v", f.Kind, f)
		}
	}
}

func TestNothingStandsOutWithoutAlignment(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	l, slow, base := ledger(map[Cause]func(int, bool) float32{
		{Kind: CPU}:                    func(int, bool) float32 { return float32(rng.IntN(10)) * 1e6 },
		{Kind: GC}:                     func(i int, _ bool) float32 { return float32(b2f(i%97 == 0)) * 5e6 },
		{Kind: Sleep, Thread: "sched"}: func(int, bool) float32 { return float32(rng.IntN(3)) * 1e6 },
	})
	v := Decide(Input{Ledger: l, SlowTime: slow, BaseTime: base, Windows: 10})
	if v.Status != NoneStandsOut {
		t.Fatalf("status %s, want %s: %s", v.Status, NoneStandsOut, v.Answer)
	}
	if !strings.HasPrefix(v.Answer, "No cause stands out") {
		t.Errorf("answer %q", v.Answer)
	}
}

func TestNoWindowsNoData(t *testing.T) {
	l, _, _ := ledger(nil)
	if v := Decide(Input{Ledger: l, BaseTime: 20 * time.Second}); v.Status != NoSlowWindows {
		t.Errorf("status %s without windows", v.Status)
	}
	if v := Decide(Input{Ledger: &Ledger{}, SlowTime: time.Second, Windows: 1}); v.Status != NoData {
		t.Errorf("status %s without off-CPU data", v.Status)
	}
}

func TestThrottlingNamesTheCPUCause(t *testing.T) {
	l, slow, base := ledger(map[Cause]func(int, bool) float32{
		{Kind: CPU}: func(_ int, s bool) float32 { return float32(b2f(s)) * 20e6 },
	})
	v := Decide(Input{Ledger: l, SlowTime: slow, BaseTime: base, Windows: 10,
		CPU: &CPUEvidence{Cgroup: "/lockscope-test", Quota: 0.2, ThrottledSlow: 0.6, ThrottledBase: 0.01}})
	if v.Findings[0].Kind != Throttling || !strings.Contains(v.Answer, "throttling") {
		t.Errorf("answer %q, want throttling", v.Answer)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestLoneWindowNeedsAlignment: one window just over the SLO, in which a
// cause that comes and goes all through the capture was a little higher:
// most of the excess, but nothing a shifted window would not catch too.
func TestLoneWindowNeedsAlignment(t *testing.T) {
	const bins = 2000
	l := &Ledger{Bin: 10e6, Bins: bins, Slow: make([]float32, bins), OffCPU: true}
	for i := 1000; i < 1007; i++ {
		l.Slow[i] = 1
	}
	rng := rand.New(rand.NewPCG(5, 6))
	e := &Evidence{Cause: Cause{Kind: Filesystem, Thread: "txlog-sync", Syscall: "fdatasync"}, Series: make([]float32, bins), Waiters: map[string]int64{"qtp": 1}}
	for i := range bins {
		v := float32(0)
		if rng.IntN(4) == 0 {
			v = 25e6 // a slow commit now and then, held by a few threads
		}
		if l.Slow[i] == 1 && i%2 == 0 {
			v = 25e6
		}
		e.Series[i] = v
		if l.Slow[i] == 1 {
			e.Slow += int64(v)
		} else {
			e.Base += int64(v)
		}
	}
	l.Evidence = []*Evidence{e}
	v := Decide(Input{Ledger: l, SlowTime: 70 * time.Millisecond, BaseTime: 20*time.Second - 70*time.Millisecond, Windows: 1})
	if v.Status == Found {
		t.Errorf("a cause claimed from one window: %s (%+v)", v.Answer, v.Findings[0])
	}
	t.Logf("%s", v.Answer)
}

// BenchmarkDecide: a 60 s capture's ledger (6000 bins of 10 ms) with 100
// causes and 30 windows: the permutation test's cost.
func BenchmarkDecide(b *testing.B) {
	const bins = 6000
	rng := rand.New(rand.NewPCG(7, 8))
	l := &Ledger{Bin: 10e6, Bins: bins, Slow: make([]float32, bins), OffCPU: true}
	for w := 0; w < 30; w++ {
		s := rng.IntN(bins - 10)
		for i := s; i < s+8; i++ {
			l.Slow[i] = 1
		}
	}
	for c := 0; c < 100; c++ {
		e := &Evidence{Cause: Cause{Kind: Other, Thread: "t", Java: strings.Repeat("x", c)}, Series: make([]float32, bins), Waiters: map[string]int64{"w": 1}}
		for i := range bins {
			e.Series[i] = float32(rng.IntN(3)) * 1e6
			if l.Slow[i] == 1 {
				e.Slow += int64(e.Series[i])
			} else {
				e.Base += int64(e.Series[i])
			}
		}
		l.Evidence = append(l.Evidence, e)
	}
	b.ResetTimer()
	for range b.N {
		Decide(Input{Ledger: l, SlowTime: 2400 * time.Millisecond, BaseTime: 57600 * time.Millisecond, Windows: 30})
	}
}
