// Package fslens turns the filesystem tracer's raw records (internal/offcpu:
// operations by device and inode, journal events, in-kernel histograms)
// into what a Kafka operator reads: files by path, the topic-partition and
// kind of each (log segment, index, checkpoint...), latency per
// topic-partition and operation, and the journal commit each slow
// operation overlapped. It also runs `lockscope fs` (Run) and converts its
// results into bundle records (bundle.go).
//
// Everything except Resolver, Mounts, NewClock and Run is pure: no kernel,
// no /proc, no clock, so it is tested with synthetic input.
//
// Limits: operations are seen at the system call (write, pwrite64, writev,
// pwritev, pwritev2, fsync, fdatasync; reads optionally), so writes through
// mmap (Kafka's index files), io_uring, sendfile and splice are not; the
// page cache's own writeback shows only through the journal.
//
// Lifetimes: a Resolver caches what it resolved for as long as it lives
// (one capture); the *bundle.FSFileInfo it returns are shared between the
// operations on the same file and must not be modified. Run owns its
// tracer and closes it before returning, also on error or cancellation.
package fslens
