// Package jfr reads Java Flight Recorder recordings: those of the JDK's own
// Flight Recorder and those of async-profiler, including recordings whose
// chunks come from both (async-profiler jfrsync).
//
// # Reading
//
// A recording is a sequence of self-contained chunks. Reader hands them out
// one at a time (NextChunk), holding only the current chunk in memory, so
// memory is bounded by the largest chunk whatever the recording's length.
// A regular file's chunk is mapped rather than read, and only a window
// around the decoder stays resident (pages are touched up to 32 MB ahead
// and dropped 4 MB behind; the page cache keeps them for pool lookups). A
// Chunk decodes its events by its own metadata: fields are found by name, so
// new or reordered fields in a newer JDK do not break decoding, and records
// of undeclared types are skipped by their size (and counted).
//
//	r, err := jfr.Open(path)
//	...
//	defer r.Close()
//	for {
//		c, err := r.NextChunk()
//		if err == io.EOF { break }
//		if err != nil { return err } // *jfr.Error: chunk index, byte offset
//		for c.Next() {
//			ev := c.Event()
//			if s, ok := ev.WallClockSample(); ok { ... }
//		}
//		if err := c.Err(); err != nil { return err }
//	}
//
// # Surface
//
//   - Reader (Open, NewReader, NextChunk, Close): chunks in file order.
//   - Chunk: Header, Metadata, Producer; Next/Event/Err to stream events in
//     file order; EpochNanos, MonotonicNanos, TicksToNanos for time;
//     Stack, Thread, Method, Class to resolve pool keys (cached by key).
//   - Event: StartTicks/Start/Duration, Thread/ThreadID, Stack/StackID, typed
//     views (ExecutionSample, WallClockSample, MonitorEnter, MonitorWait,
//     ThreadPark, Allocation, ThreadSleep, FileIO, SocketIO, GCPause,
//     NativeMemory, Span), field access by name (Int, String, Class,
//     ThreadField, Nanos, Value, Values) and by index (RawAt) for hot loops.
//   - Summarize: per-chunk and per-type counts (lockscope jfr summary).
//
// Events are decoded lazily: Next only frames a record (size and type), its
// fields are decoded on first access, and stacks, threads, methods and
// classes are decoded on first reference and cached by pool key, so a pass
// that needs only some event types pays for little else.
//
// # Lifetimes
//
// The *Chunk returned by NextChunk and the *Event returned by Chunk.Event
// are reused: a Chunk is valid until the next NextChunk call, an Event until
// the next Chunk.Next. Everything they resolve (*Stack, *Thread, *Method,
// *Class, strings, typed views) is immutable, owns its memory, and stays
// valid for good. Pool keys (Stack.ID, Thread.ID...) mean something only
// within their chunk; resolved values are shared between events of a chunk,
// so pointer identity can be used to deduplicate within a chunk.
//
// # Time
//
// Event times are stored in ticks. Chunk.EpochNanos converts a tick
// timestamp to Unix epoch nanoseconds as StartNanos + (ticks - StartTicks)
// scaled by TicksPerSecond, for every producer.
//
// async-profiler (Chunk.Producer == ProducerAsyncProfiler) writes 1e9 ticks
// per second and ticks that are absolute CLOCK_MONOTONIC nanoseconds, the
// clock of bpf_ktime_get_ns; Chunk.MonotonicNanos returns them as they are.
//
// The JDK counts ticks from JVM start (os::elapsed_counter, itself derived
// from CLOCK_MONOTONIC on Linux, but with an unrecorded origin), so for JDK
// chunks MonotonicNanos reports false: convert EpochNanos with a
// (monotonic, realtime) pair sampled on the same host during the capture,
// monotonic = epoch - (realtime - monotonic).
//
// # Thread identity
//
// Thread.OSThreadID is the host OS thread id (what eBPF, perf and /proc
// see); JavaThreadID is the JVM's own id and JavaName is empty for
// JVM-internal threads.
//
// # Broken input
//
// A truncated recording (one still being written, or a cut file) yields
// every event of every complete chunk, then an *Error wrapping ErrTruncated
// with the chunk's index and the offset where data ends. Corrupt sizes,
// offsets and counts give an *Error wrapping ErrCorrupt. Counts and sizes
// are checked against the bytes present before anything is allocated, the
// constant-pool chain must move backwards, and types that contain
// themselves inline are rejected, so no input causes a panic, an endless
// loop or an allocation larger than the chunk.
package jfr
