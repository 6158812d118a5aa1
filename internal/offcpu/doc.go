// Package offcpu collects the off-CPU intervals of the threads of target
// processes (JVMs) with eBPF: for every span a thread spent off the CPU, when
// it started and ended (CLOCK_MONOTONIC), why it left (run queue, sleep,
// uninterruptible wait), who woke it, and the kernel stack it waited in.
//
// It is the only package of lockscope that imports cilium/ebpf. The BPF
// program lives in ../../bpf (C, CO-RE) and is compiled by bpf2go into the
// committed offcpu_bpfel.{o,go} (see gen.go).
//
// The types other packages consume (Interval, State, Counters, Config) build
// on every OS; Start works on Linux only.
//
// Lifetimes: Start loads and attaches the programs and returns a Collector
// that owns them, the ring buffer reader and a goroutine that streams
// Intervals. Cancelling Start's context stops reading after everything
// already submitted has been delivered; Close detaches and frees everything,
// also after a failed or partial Start. Links are owned by file descriptors
// and never pinned, so a killed lockscope leaves no program attached. An
// Interval owns its memory; nothing it holds points into reused buffers.
//
// Neither flavour needs tracefs: tp_btf programs attach by BTF id and raw_tp
// programs by tracepoint name through bpf(2), so an unmounted
// /sys/kernel/tracing does not matter here.
//
// Cost: the sched_switch program filters on the target tgids (load-time
// constants) before anything else, so a switch of another process costs one
// tracepoint dispatch and two loads. Lazy mode (the default) walks a kernel
// stack only when a target thread comes back after at least MinBlock, with
// bpf_get_task_stack on the incoming task; the kernel then omits functions
// marked __sched (schedule, do_nanosleep, ...) as it does for any task that
// is not running. Eager mode and the raw_tp flavour walk stacks at switch-out
// from inside the tracepoint, which costs microseconds per switch.
// scripts/bench-offcpu.sh measures all of this against perf bench sched pipe.
//
// User stacks (eager mode) are frame-pointer walks by the kernel. Code built
// without frame pointers ends them early: Debian's glibc is, so a thread
// blocked inside libc (a JVM parked on a futex) shows only the libc frame.
// Java stacks come from async-profiler, joined by thread and time; these
// intervals supply what it cannot see, the kernel side.
//
// # The filesystem tracer
//
// StartFS (fs*.go, bpf/fs.bpf.c) follows the file operations of the same
// kind of targets: write, pwrite64, writev, pwritev(2), fsync and fdatasync
// (reads optionally) on regular files, each timed on CLOCK_MONOTONIC with
// the file's device and inode read from the task's fd table. Those of at
// least FSConfig.Min come out one by one (Events); every one is counted in
// in-kernel log2 histograms per file (Histograms, also after Close). The
// journal of every ext4 and XFS device comes beside them (Journal): jbd2
// commits (start, end and run stats paired per transaction), long jbd2
// handles of the targets, ext4 syncs and fast commits, XFS log forces and
// fsyncs. Unlike the off-CPU collector it uses classic tracepoints, which
// need tracefs: StartFS mounts it at /sys/kernel/tracing when it is not
// (MountTracefs). Both channels must be drained; filesystems not built in
// or not loaded are reported by Missing rather than failing. Enabling the
// syscall tracepoints costs every process a tracepoint dispatch per traced
// system call (scripts/bench-fs.sh).
package offcpu
