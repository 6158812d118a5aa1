// Package fslens turns the filesystem tracer's raw records (internal/offcpu:
// operations by device and inode, journal events, in-kernel histograms)
// into what a Kafka operator reads: files by path, the topic-partition and
// kind of each (log segment, index, checkpoint...), latency per
// topic-partition and operation, and the journal commit each slow
// operation overlapped. It also runs `lockscope fs` (Run) and converts its
// results into bundle records (bundle.go).
//
// Everything except Resolver, Run and Devices is pure: no kernel, no /proc,
// no clock, so it is tested with synthetic input.
//
// Lifetimes: a Resolver caches what it resolved for as long as it lives
// (one capture); the *bundle.FSFileInfo it returns are shared between the
// operations on the same file and must not be modified. Run owns its
// tracer and closes it before returning, also on error or cancellation.
package fslens
