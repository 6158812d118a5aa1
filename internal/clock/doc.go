// Package clock is lockscope's one clock: CLOCK_MONOTONIC nanoseconds, what
// bpf_ktime_get_ns and async-profiler's JFR ticks count. Everything stamped
// in wall-clock time (packets, request logs, JDK Flight Recorder events) is
// converted once, where it enters, with a Mapping made of two (monotonic,
// realtime) Pairs sampled at the start and the end of a capture and kept in
// the bundle's meta.json, so the conversion can be redone offline.
//
// Pairs and Mappings are plain values; only Sample and Now read the kernel.
package clock
