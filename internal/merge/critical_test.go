package merge

import (
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/verdict"
)

func kstack(names ...string) []bundle.Frame {
	var out []bundle.Frame
	for _, n := range names {
		out = append(out, bundle.Frame{Name: n, Kind: bundle.KindKernel})
	}
	return out
}

const msU = uint64(time.Millisecond)

// TestLedgerFollowsWakers: a request thread parked on a futex is woken by
// the sync thread, which spent most of that time in fdatasync waiting for a
// journal commit: the request thread's wait is the filesystem's, through the
// hand-off; its run-queue time after the wakeup is the CPU's; a wait woken
// by the VM thread is a safepoint's; an epoll wait is a wait for work.
func TestLedgerFollowsWakers(t *testing.T) {
	futex := kstack("futex_do_wait", "futex_wait", "__x64_sys_futex")
	fsync := kstack("jbd2_log_wait_commit", "ext4_sync_file", "__x64_sys_fdatasync")
	in := Input{OffCPU: offcpuStream(t,
		// qtp-1 waits 1000..1200 ms, woken by txlog-sync at 1180, runs at 1200.
		bundle.Interval{TID: 10, TGID: 1, Thread: "qtp-1", Start: 1000 * msU, End: 1200 * msU, Wakeup: 1180 * msU,
			State: offcpu.Sleeping, WakerTID: 20, Kernel: futex},
		// txlog-sync: in fdatasync 1010..1170, on the CPU around it.
		bundle.Interval{TID: 20, TGID: 1, Thread: "txlog-sync", Start: 1010 * msU, End: 1170 * msU,
			State: offcpu.Uninterruptible, Kernel: fsync},
		// qtp-2 waits 2000..2050 ms for a safepoint's end.
		bundle.Interval{TID: 11, TGID: 1, Thread: "qtp-2", Start: 2000 * msU, End: 2050 * msU,
			State: offcpu.Sleeping, WakerTID: 30, Kernel: futex},
		bundle.Interval{TID: 30, TGID: 1, Thread: "VM Thread", Start: 1500 * msU, End: 1990 * msU,
			State: offcpu.Sleeping, Kernel: futex},
		// A selector waiting for input: not a cause.
		bundle.Interval{TID: 12, TGID: 1, Thread: "qtp-3", Start: 1000 * msU, End: 2500 * msU,
			State: offcpu.Sleeping, Kernel: kstack("ep_poll", "do_epoll_wait")},
	)}
	ws := windows(latency.Window{Start: int64(900 * msU), End: int64(2100 * msU)})
	res, err := Merge(in, Options{Windows: ws})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Ledger
	got := map[verdict.Kind]int64{}
	var fs *verdict.Evidence
	for _, e := range l.Evidence {
		got[e.Kind] += e.Slow
		if e.Kind == verdict.Filesystem && e.Waiters["qtp"] > 0 {
			fs = e
		}
	}
	if fs == nil || fs.Thread != "txlog-sync" || fs.Kernel != "jbd2_log_wait_commit" || fs.Syscall != "fdatasync" || fs.Via != "a futex" {
		t.Fatalf("no filesystem cause reached from qtp through the hand-off: %+v", l.Evidence)
	}
	// qtp-1: 160 ms in the sync thread's fdatasync, 20 ms of its on-CPU
	// work around it, 20 ms runnable; txlog-sync's own 160 ms.
	if want := int64(320 * msU); got[verdict.Filesystem] != want {
		t.Errorf("filesystem %v, want %v", time.Duration(got[verdict.Filesystem]), time.Duration(want))
	}
	if want := int64(20 * msU); got[verdict.CPU] != want {
		t.Errorf("cpu %v, want %v", time.Duration(got[verdict.CPU]), time.Duration(want))
	}
	if want := int64(20 * msU); got[verdict.Handoff] != want {
		t.Errorf("hand-off (the sync thread on the CPU) %v, want %v", time.Duration(got[verdict.Handoff]), time.Duration(want))
	}
	if want := int64(50 * msU); got[verdict.GC] != want {
		t.Errorf("safepoint %v, want %v", time.Duration(got[verdict.GC]), time.Duration(want))
	}
	if l.Idle != int64(1100*msU) {
		t.Errorf("idle %v, want the selector's 1.1 s inside the window", time.Duration(l.Idle))
	}
	v := verdict.Decide(VerdictInput(res, Options{Windows: ws}))
	t.Logf("%s", v.Answer)
}

// TestLedgerRunQueueAfterIdle: a selector woken by a request that then
// waits 40 ms for a CPU was held up by the CPU, not waiting for work; a
// preempted thread is never waiting for work, whatever its context.
func TestLedgerRunQueueAfterIdle(t *testing.T) {
	in := Input{OffCPU: offcpuStream(t,
		bundle.Interval{TID: 10, TGID: 1, Thread: "network-1", Start: 1000 * msU, End: 1100 * msU, Wakeup: 1060 * msU,
			State: offcpu.Sleeping, Kernel: kstack("ep_poll", "do_epoll_wait")},
		bundle.Interval{TID: 10, TGID: 1, Thread: "network-1", Start: 1200 * msU, End: 1230 * msU,
			State: offcpu.Preempted, Kernel: kstack("irqentry_exit_to_user_mode")},
	)}
	res, err := Merge(in, Options{Windows: windows(latency.Window{Start: int64(900 * msU), End: int64(1300 * msU)})})
	if err != nil {
		t.Fatal(err)
	}
	var cpu int64
	for _, e := range res.Ledger.Evidence {
		if e.Kind == verdict.CPU {
			cpu += e.Slow
		}
	}
	if cpu != int64(70*msU) || res.Ledger.Idle != int64(60*msU) {
		t.Errorf("cpu %v, idle %v; want 70ms (40 after the wakeup, 30 preempted) and 60ms", time.Duration(cpu), time.Duration(res.Ledger.Idle))
	}
}

// TestPauseStarved: a pause whose GC worker waited for a CPU for part of
// its active time is that much the CPU's; a worker asleep all through it
// (not taking part) changes nothing.
func TestPauseStarved(t *testing.T) {
	ms := int64(time.Millisecond)
	p := pause{start: 100 * ms, end: 200 * ms, gc: true}
	busy := &thread{name: "GC Thread#0", ivs: []*interval{
		{start: 50 * ms, end: 120 * ms, wake: 110 * ms},  // asleep 100–110, then woken and waiting 110–120
		{start: 150 * ms, end: 190 * ms, runnable: true}, // preempted 40 ms
	}}
	idle := &thread{name: "GC Thread#1", ivs: []*interval{{start: 0, end: 300 * ms}}}
	if got, want := starved(p, []*thread{busy, idle}), 50.0/90; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("starved %.3f, want %.3f (50 ms waiting of 90 active)", got, want)
	}
	if got := starved(p, []*thread{idle}); got != 0 {
		t.Errorf("a pause nobody worked in: starved %v, want 0", got)
	}
	if !pauseWorker("GC Thread#3") || !pauseWorker("VM Thread") || pauseWorker("G1 Conc#0") {
		t.Error("pause workers: GC Thread#N and VM Thread, not the concurrent G1 threads")
	}
}
