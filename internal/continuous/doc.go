// Package continuous runs lockscope in continuous mode: one capture per
// period (default 60 s) of a broker JVM, each merged and its slow and
// baseline profiles pushed to Pyroscope (package pyroscope) labelled
// slo_breach=true and false, so that Pyroscope holds, over time, what the
// broker's threads did while produce latency exceeded the SLO next to what
// they did otherwise.
//
// Run owns everything it starts: each period's capture (whose profiler
// stops when the period ends, when Run's context ends, or by its own
// timeout should lockscope die), the period's bundle directory (removed
// once its profiles are queued unless Options.KeepBundles is set) and the
// pusher (closed before Run returns, after pushing what is queued for at
// most FlushTimeout). Nothing keeps running after Run returns.
//
// Memory is bounded when Pyroscope is down: a period's profiles are read
// into memory only to be split and queued, and the pusher's queue drops
// its oldest profiles beyond its bound (see pyroscope.Options).
//
// Options.Acquire lets an agent (lockscope serve) make continuous mode
// share the JVM with alert-triggered captures: a period waits for the gate
// and releases it as soon as its capture is merged.
package continuous
