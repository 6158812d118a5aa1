// Package merge joins what a capture recorded into flame graphs of the
// moments produce latency exceeded the SLO: Java stacks from a JFR
// recording (async-profiler or the JDK Flight Recorder) and kernel stacks of
// off-CPU intervals from eBPF, by OS thread id and CLOCK_MONOTONIC time,
// split by the SLO-breach windows into a slow profile and a baseline.
//
// Merge is a pure function of its inputs: no kernel, no JVM, no clock. It
// can be re-run on a bundle offline with another SLO.
//
// # Stitching
//
// Every stack reads, root to leaf: the thread's pool
// ([data-plane-kafka-request-handler]), the Java and native frames from
// JFR, then the kernel frames the thread waited in. A wall-clock sample
// that falls inside an off-CPU interval of its thread gets that interval's
// kernel frames. An off-CPU interval gets the Java context of its thread,
// chosen in this order (and counted in Stats):
//
//  1. a wall sample taken inside the interval (the thread was sampled while
//     it waited);
//  2. an event with a duration and a stack that overlaps the interval
//     (monitor enter, park, sleep, file and socket I/O);
//  3. the nearest sample of the thread within Options.ContextBound;
//  4. none: the stack is the pool and kernel frames under "[no Java context]".
//
// # Weights
//
// All values are nanoseconds. A wall sample weighs the wall interval; a
// batched async-profiler sample stands for Samples samples evenly spaced
// over TimeSpan, each placed in the slow or baseline profile by its own
// time. Lock waits and off-CPU intervals weigh their time inside (slow) or
// outside (baseline) the windows, so one interval can contribute to both.
package merge
