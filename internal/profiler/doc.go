// Package profiler starts and stops the profiler lockscope records Java
// stacks with, inside a running JVM reached through package attach:
// async-profiler (wall-clock and lock contention into one JFR recording)
// when it is installed, else the JDK Flight Recorder with lockscope's own
// settings (lockscope.jfc).
//
// # Nothing lingers
//
// Every recording stops by itself even if lockscope dies: async-profiler is
// started with its own timeout, the Flight Recorder with a duration, both set
// to the capture's length plus a grace period. Stop ends it earlier and
// collects the file; Close, on error paths, stops without collecting.
//
// # Files in the JVM's mount namespace
//
// The JVM opens the paths it is given in its own mount namespace, which in a
// container is not the host's. lockscope therefore writes what the JVM must
// read (the .jfc settings, and the async-profiler library when the JVM cannot
// see the host's copy at the same path) into the JVM's /tmp through
// /proc/PID/root, has the JVM write its recording there too, and moves the
// recording to the caller's path when the capture stops. A recording whose
// lockscope died stays in the JVM's /tmp as lockscope-<id>.jfr.
//
// # What each profiler sees
//
// async-profiler's wall-clock mode samples every thread whatever its state,
// with Java, native and JVM frames, but records no kernel frames in that mode;
// its lock mode records monitor and j.u.c. lock waits with Java frames only.
// Its timestamps use CLOCK_MONOTONIC (clock=monotonic), the clock of eBPF's
// bpf_ktime_get_ns, so the two join without conversion.
//
// The Flight Recorder has no wall-clock sampling: a thread blocked outside an
// instrumented call (monitor, park, sleep, file and socket I/O) is seen only by
// jdk.NativeMethodSample, with Java frames and no native or kernel ones. It
// stamps events with its own ticks, converted to wall time by the chunk
// header; lockscope keeps (monotonic, realtime) clock pairs around the capture
// so that they can be brought onto the monotonic clock.
//
// At the end of a capture both ask the JVM (JDK 17+) to write its JIT symbol
// map (Compiler.perfmap, /tmp/perf-<nspid>.map) so that eBPF user stacks
// through compiled Java code can be symbolized.
package profiler
