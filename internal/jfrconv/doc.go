// Package jfrconv converts JFR recordings (read with internal/jfr) into
// profiles: pprof (github.com/google/pprof/profile, checked with CheckValid
// before it is written) and folded stacks for flame-graph tools.
//
// Profile reads a recording chunk by chunk (any io.Reader, e.g. a gzip
// stream), so memory is bounded by the largest chunk plus the profile being
// built. ProfileFile does the same for a file with several chunks converted
// at once (jfr.Parallel), one per CPU: memory is then bounded by that many
// chunks. Each chunk is converted into chunk-local tables, functions and
// locations deduplicated by their JFR ids; the merge, in chunk order, looks
// a name up only once per method per chunk to join chunks whose ids differ.
// A truncated recording gives the profile of its complete chunks and the
// error in Stats.Err.
//
// Sample types by event kind:
//
//	cpu     samples/count, cpu/nanoseconds       jdk.ExecutionSample (not from async-profiler's wall engine)
//	wall    samples/count, wall/nanoseconds      profiler.WallClockSample (weight: its samples field),
//	                                              jdk.ExecutionSample from async-profiler's wall engine (nobatch)
//	lock    contentions/count, delay/nanoseconds jdk.JavaMonitorEnter + jdk.ThreadPark
//	monitor, park, sleep, io, nativelock         the same units, one event family each
//	alloc   alloc_objects/count, alloc_space/bytes  jdk.ObjectAllocation{InNewTLAB,OutsideTLAB,Sample}
//	live    live_objects/count, live_space/bytes profiler.LiveObject
//	malloc  malloc_calls/count, malloc_space/bytes profiler.Malloc
//	native  samples/count, native/nanoseconds    jdk.NativeMethodSample
//
// The nanoseconds of a sample are the sampling interval, taken from the
// chunk's jdk.ActiveSetting events (async-profiler's interval/wall
// settings, the JDK's period of jdk.ExecutionSample), with the producers'
// defaults when unset. Lock, alloc and similar profiles get the monitor,
// parked or allocated class as their leaf frame, as async-profiler's own
// converter does. Every sample carries the thread's name (label "thread")
// and OS thread id (numeric label "tid"); the samples of one thread share
// their Label and NumLabel maps, so copy them before changing one sample's
// labels.
package jfrconv
