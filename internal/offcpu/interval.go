package offcpu

import "fmt"

// This file builds on every OS: internal/merge and the bundle reader consume
// these types without importing cilium/ebpf.

// State is why a thread left the CPU: the low byte of the scheduler's
// prev_state at switch-out (TASK_* bits).
type State uint8

// The states an interval can start in. Other values (stopped, traced, dead)
// are kept as they are and print as a number.
const (
	// Preempted: the thread stayed runnable and waited in the run queue.
	Preempted State = 0
	// Sleeping: TASK_INTERRUPTIBLE (futex, poll, nanosleep, ...).
	Sleeping State = 1
	// Uninterruptible: TASK_UNINTERRUPTIBLE, usually disk I/O or a
	// filesystem journal (jbd2) commit.
	Uninterruptible State = 2
)

// String returns the name used in pprof labels and folded stacks.
func (s State) String() string {
	switch s {
	case Preempted:
		return "runqueue"
	case Sleeping:
		return "sleeping"
	case Uninterruptible:
		return "uninterruptible"
	}
	return fmt.Sprintf("state-%#x", uint8(s))
}

// Interval is one span a thread of a target process spent off the CPU.
//
// Times are CLOCK_MONOTONIC nanoseconds (the clock of the whole bundle);
// thread ids are host ids. Stacks are raw instruction addresses, innermost
// first; internal/symbolize names them. An Interval owns its slices.
type Interval struct {
	TID, TGID uint32
	// Thread is the thread's name (/proc/TGID/task/TID/comm) when the
	// interval was read; empty if the thread was already gone.
	Thread     string
	Start, End uint64
	// Wakeup is when the thread was last woken (sched_waking) during the
	// interval, 0 if no wakeup was seen (preemption, or a wakeup before
	// the collector started). Start to Wakeup is the time it was blocked,
	// Wakeup to End the time it then waited for a CPU.
	Wakeup uint64
	State  State
	// CPU is the CPU the thread was switched back in on.
	CPU uint32
	// WakerTID is the thread that last woke this one during the interval
	// (sched_waking); 0 if none was seen or the wakeup came from an
	// interrupt over the idle task.
	WakerTID uint32
	// WakerThread is the waker's thread name when it could be read (the
	// waker may belong to another process, or be a kernel thread such as
	// jbd2).
	WakerThread string
	// Kernel is the kernel stack the thread waited in.
	Kernel []uint64
	// User is the native user stack at switch-out (eager mode only,
	// frame-pointer walk).
	User []uint64
	// Waker is the waker's kernel stack (eager mode only).
	Waker []uint64
	// KernelErr is the negative errno of a failed kernel stack walk, 0
	// when Kernel is valid.
	KernelErr int32
	// KernelAtSwitchOut is set when Kernel was walked at switch-out
	// (eager mode, raw_tp programs) rather than at switch-in.
	KernelAtSwitchOut bool
}

// Duration returns the length of the interval in nanoseconds.
func (iv *Interval) Duration() uint64 { return iv.End - iv.Start }

// Blocked returns how long the thread was blocked before it was woken, in
// nanoseconds: the whole interval when no wakeup was seen.
func (iv *Interval) Blocked() uint64 {
	if iv.Wakeup == 0 || iv.Wakeup < iv.Start || iv.Wakeup > iv.End {
		return iv.Duration()
	}
	return iv.Wakeup - iv.Start
}

// Counters are the collector's totals, summed over CPUs. Anything non-zero
// beside Events means data is missing and must be shown to the user.
type Counters struct {
	// Events is the number of intervals submitted by the kernel side.
	Events uint64
	// Drops counts intervals lost because the ring buffer was full.
	Drops uint64
	// KernelStackFailures, UserStackFailures and WakerStackFailures count
	// stack walks that failed; the intervals were still reported.
	KernelStackFailures uint64
	UserStackFailures   uint64
	WakerStackFailures  uint64
	// StateFailures counts switch-outs whose start could not be stored
	// (storage allocation failed): those intervals are missing.
	StateFailures uint64
	// Malformed counts ring buffer records too short to decode.
	Malformed uint64
}

// String is the one-line summary printed at the end of a command.
func (c Counters) String() string {
	return fmt.Sprintf("events=%d drops=%d kernel-stack-failures=%d user-stack-failures=%d waker-stack-failures=%d state-failures=%d malformed=%d",
		c.Events, c.Drops, c.KernelStackFailures, c.UserStackFailures, c.WakerStackFailures, c.StateFailures, c.Malformed)
}
