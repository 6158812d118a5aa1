package verdict

import "time"

// Kind is what a cause is, by the activity at the end of the waiting
// threads' critical path.
type Kind string

// Cause kinds.
const (
	// Filesystem: a thread on the path waited for the filesystem (a
	// journal commit, a sync, writeback).
	Filesystem Kind = "filesystem"
	// GC: every Java thread stopped for a garbage collection or another
	// safepoint operation.
	GC Kind = "gc"
	// CPU: threads were runnable but not running (run-queue waits,
	// preemption); Throttling when the target's cgroup ran out of quota
	// meanwhile (decided from the cgroup's cpu.stat).
	CPU        Kind = "cpu"
	Throttling Kind = "cpu-throttling"
	// Lock: the path went through a lock whose holder was busy or asleep
	// (not in the filesystem, not stopped by GC).
	Lock Kind = "lock"
	// Handoff: the path went through a hand-off (a queue, a future, a
	// condition) to a thread that was busy or asleep.
	Handoff Kind = "handoff"
	// Socket: a thread waited for a socket's send buffer.
	Socket Kind = "socket"
	// Reclaim: a thread waited for memory (direct reclaim, compaction).
	Reclaim Kind = "memory-reclaim"
	// Sleep: a thread on the path slept (Thread.sleep, a timed park)
	// outside any lock or hand-off.
	Sleep Kind = "sleep"
	// Other: a kernel wait none of the above explains.
	Other Kind = "other"
)

// Cause names one thing threads waited for: its kind and the activity of
// the thread at the end of the path.
type Cause struct {
	Kind Kind `json:"kind"`
	// Thread is the thread pool whose activity it was (the sync thread,
	// the lock holder); empty for GC and CPU, which are no one thread's.
	Thread string `json:"thread,omitempty"`
	// Java is the innermost telling Java frame of that activity, App the
	// innermost frame outside the JDK (the application's own code).
	Java string `json:"java,omitempty"`
	App  string `json:"app,omitempty"`
	// Syscall and Kernel are the system call and innermost kernel function
	// it waited in ("fdatasync", "jbd2_log_wait_commit").
	Syscall string `json:"syscall,omitempty"`
	Kernel  string `json:"kernel,omitempty"`
	// Via is how the waiting threads reached it: "lock kafka.log.UnifiedLog",
	// "java.util.concurrent.CompletableFuture", "futex"; empty when they
	// waited for it themselves.
	Via string `json:"via,omitempty"`
}

// Evidence is a cause's share of the threads' waiting: thread-time in
// the slow windows and outside them, over time.
type Evidence struct {
	Cause
	// Slow and Base are thread-nanoseconds charged inside and outside the
	// slow windows.
	Slow int64 `json:"slow_ns"`
	Base int64 `json:"baseline_ns"`
	// Series is the thread-nanoseconds charged per bin of the ledger.
	Series []float32 `json:"-"`
	// Waiters are the thread pools whose waiting was charged here, with
	// their slow-window time.
	Waiters map[string]int64 `json:"waiters,omitempty"`
	// Pauses counts the stop-the-world pauses in the slow windows and
	// Worst names the longest (GC only).
	Pauses int           `json:"pauses,omitempty"`
	Worst  time.Duration `json:"worst_pause_ns,omitempty"`
	What   string        `json:"what,omitempty"`
}

// Ledger is every cause the merge found on the critical paths of the
// target's threads, with the time each was charged.
type Ledger struct {
	// Start is the CLOCK_MONOTONIC time of the first bin; Bin is the bin
	// width (ns); Bins the number of bins.
	Start, Bin int64
	Bins       int
	// Slow is the slow windows' share of each bin (0..1).
	Slow     []float32
	Evidence []*Evidence
	// Idle is the waiting for work left out (thread-ns), Unattributed the
	// waiting whose cause the wakeups do not name, both in the slow windows.
	Idle         int64 `json:"idle_ns"`
	Unattributed int64 `json:"unattributed_ns"`
	// OffCPU says whether off-CPU intervals were there to charge.
	OffCPU bool `json:"offcpu"`
	// Pauses is every stop-the-world pause seen, for the GC evidence.
	Pauses int `json:"pauses"`
}
