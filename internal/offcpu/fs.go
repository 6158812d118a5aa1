package offcpu

import (
	"fmt"
	"os"
	"time"
)

// This file builds on every OS: the filesystem lens (internal/fslens), the
// bundle and the commands consume these types without importing
// cilium/ebpf. StartFS (fs_linux.go) is the kernel side.

// FSOp is the system call a file operation was made with.
type FSOp uint8

// The operations the filesystem tracer follows. Reads are followed only
// when FSConfig.Reads is set. The values are FS_OP_* of bpf/fs.h.
const (
	FSWrite FSOp = iota + 1
	FSPwrite64
	FSWritev
	FSPwritev
	FSPwritev2
	FSFsync
	FSFdatasync
	FSRead
	FSPread64
	FSReadv
	fsOpEnd
)

var fsOpNames = [...]string{
	FSWrite: "write", FSPwrite64: "pwrite64", FSWritev: "writev", FSPwritev: "pwritev",
	FSPwritev2: "pwritev2", FSFsync: "fsync", FSFdatasync: "fdatasync", FSRead: "read",
	FSPread64: "pread64", FSReadv: "readv",
}

// String is the system call's name.
func (o FSOp) String() string {
	if o > 0 && o < fsOpEnd {
		return fsOpNames[o]
	}
	return fmt.Sprintf("op-%d", uint8(o))
}

// IsSync reports whether the operation is fsync or fdatasync (no bytes).
func (o FSOp) IsSync() bool { return o == FSFsync || o == FSFdatasync }

// IsRead reports whether the operation reads.
func (o FSOp) IsRead() bool { return o == FSRead || o == FSPread64 || o == FSReadv }

// ParseFSOp is the inverse of String.
func ParseFSOp(s string) (FSOp, bool) {
	for i, n := range fsOpNames {
		if n != "" && n == s {
			return FSOp(i), true
		}
	}
	return 0, false
}

// FSConfig says what the filesystem tracer follows. The zero value plus
// PIDs is valid; Validate fills defaults.
type FSConfig struct {
	// PIDs are the host process ids (tgids) to follow, at most MaxTargets.
	PIDs []int
	// Min is the latency from which an operation is reported one by one
	// (Events); faster ones are only counted in the histograms. Zero means
	// the default, 1ms; KeepAll reports every operation.
	Min time.Duration
	// Reads also follows read, pread64 and readv.
	Reads bool
	// RingBytes is the ring buffer size, a power of two of at least one
	// page (default 4 MiB).
	RingBytes int
	// PollInterval bounds how long an event waits in the ring buffer
	// (default 100ms).
	PollInterval time.Duration
	// MaxFiles bounds the in-kernel histograms: (file, operation) pairs
	// beyond it are counted in FSCounters.HistogramOverflow (default 4096).
	// The operation in flight of each thread lives in task storage, which
	// needs no bound.
	MaxFiles int
}

// Defaults of FSConfig.
const (
	DefaultFSMin       = time.Millisecond
	DefaultFSRingBytes = 4 << 20
	DefaultFSMaxFiles  = 4096
)

// FSHistBuckets is the number of log2 latency buckets (FS_HIST_BUCKETS of
// bpf/fs.h): bucket i counts operations that took [2^i, 2^(i+1)) ns, the
// last one everything from 2^(FSHistBuckets-1) ns (about 9 minutes) on.
const FSHistBuckets = 40

// Validate checks the configuration and fills defaults. It touches neither
// the kernel nor the target processes.
func (c *FSConfig) Validate() error {
	if err := validatePIDs(c.PIDs, "the broker's", "tracer"); err != nil {
		return err
	}
	switch {
	case c.Min == 0:
		c.Min = DefaultFSMin
	case c.Min < 0 && c.Min != KeepAll:
		return fmt.Errorf("invalid minimum latency %v: must be >= 0", c.Min)
	}
	if c.RingBytes == 0 {
		c.RingBytes = DefaultFSRingBytes
	}
	page := os.Getpagesize()
	if c.RingBytes < page || c.RingBytes&(c.RingBytes-1) != 0 {
		return fmt.Errorf("invalid ring buffer size %d: must be a power of two of at least %d", c.RingBytes, page)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("invalid poll interval %v: must be > 0", c.PollInterval)
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultFSMaxFiles
	}
	if c.MaxFiles < 0 {
		return fmt.Errorf("invalid max files %d: must be > 0", c.MaxFiles)
	}
	return nil
}

// FSEvent is one file operation of a target thread at least FSConfig.Min
// long. Dev and Ino identify the file (Dev in the encoding of stat(2),
// unix.Mkdev); both are 0 when the kernel side could not read them (the fd
// was closed by another thread meanwhile). Times are CLOCK_MONOTONIC ns.
type FSEvent struct {
	TID, TGID uint32
	Op        FSOp
	FD        int32
	Dev       uint64
	Ino       uint64
	// Ret is what the system call returned: bytes moved, or a negative
	// errno.
	Ret        int64
	Start, End uint64
}

// Duration is how long the call took.
func (e *FSEvent) Duration() time.Duration { return time.Duration(e.End - e.Start) }

// FSHistogram counts every operation of one kind by one process on one
// file, fast ones included.
type FSHistogram struct {
	TGID     uint32
	Dev, Ino uint64
	Op       FSOp
	Count    uint64
	SumNs    uint64
	// MaxNs is the longest operation (updated without a lock by
	// concurrent threads: exact unless two of them raced).
	MaxNs uint64
	// Bytes sums what the operations returned when they succeeded.
	Bytes uint64
	// Buckets[i] counts operations that took [2^i, 2^(i+1)) ns.
	Buckets [FSHistBuckets]uint64
}

// JournalKind is what a JournalEvent records.
type JournalKind uint8

const (
	// JournalJBD2Commit is one committed ext4 (jbd2) transaction: Start
	// and End from jbd2_start_commit and jbd2_end_commit, the phases from
	// jbd2_run_stats. TID is the committing thread (jbd2/DEV).
	JournalJBD2Commit JournalKind = iota + 1
	// JournalJBD2Handle is a jbd2 handle a target thread held for at
	// least one jiffy (jbd2_handle_stats): the commit of its transaction
	// waited for it in its locked phase. End is when it was stopped,
	// Start one handle interval (jiffy resolution) before; Blocks is what
	// it dirtied.
	JournalJBD2Handle
	// JournalXFSLogForce is an XFS log force (xfs_log_force): a point in
	// time (Start == End), by whichever thread forced the log.
	JournalXFSLogForce
	// JournalExt4SyncFile is ext4_sync_file_enter..exit of a target
	// thread.
	JournalExt4SyncFile
	// JournalXFSFileFsync is the start of xfs_file_fsync in a target
	// thread: a point in time.
	JournalXFSFileFsync
	// JournalExt4FastCommit is one ext4 fast commit (fast_commit
	// feature), in the syncing thread: Start and End from
	// ext4_fc_commit_start and _stop, Blocks written, Handles the fast
	// commits so far, Ret the outcome (0 committed, 1 ineligible: fell back
	// to a full jbd2 commit, 2 skipped, 3 failed).
	JournalExt4FastCommit
	journalKindEnd
)

var journalKindNames = [...]string{
	JournalJBD2Commit: "jbd2_commit", JournalJBD2Handle: "jbd2_handle", JournalXFSLogForce: "xfs_log_force",
	JournalExt4SyncFile: "ext4_sync_file", JournalXFSFileFsync: "xfs_file_fsync", JournalExt4FastCommit: "ext4_fast_commit",
}

// String is the name used in output and bundles.
func (k JournalKind) String() string {
	if k > 0 && k < journalKindEnd {
		return journalKindNames[k]
	}
	return fmt.Sprintf("journal-%d", uint8(k))
}

// JournalEvent is journal or log activity on a device. Dev is in the
// encoding of stat(2); times are CLOCK_MONOTONIC ns. The jbd2 phases come
// from jbd2_run_stats in jiffies and are converted with the kernel's HZ, so
// their resolution is one jiffy.
type JournalEvent struct {
	Kind        JournalKind
	Dev         uint64
	Transaction uint32
	TID         uint32
	// Ino is the file synced (ext4_sync_file, xfs_file_fsync).
	Ino                                                    uint64
	Start, End                                             uint64
	Wait, RequestDelay, Running, Locked, Flushing, Logging time.Duration
	Handles, Blocks, BlocksLogged                          uint32
	// Sync is set for a jbd2 commit that someone waited for (fsync) and
	// for a datasync ext4_sync_file.
	Sync bool
	// Ret is the error of ext4_sync_file (0 or a negative errno).
	Ret int32
}

// Duration is the event's length (0 for point events).
func (j *JournalEvent) Duration() time.Duration { return time.Duration(j.End - j.Start) }

// FSCounters are the tracer's totals. Anything non-zero beside Events,
// JournalEvents and NonFiles means data is missing and must be shown.
type FSCounters struct {
	// Events is the number of operations reported one by one.
	Events uint64
	// JournalEvents is the number of journal records submitted.
	JournalEvents uint64
	// Drops counts records lost because the ring buffer was full.
	Drops uint64
	// HistogramOverflow counts operations not in any histogram because
	// MaxFiles (file, operation) pairs were already counted.
	HistogramOverflow uint64
	// InflightFailures counts operations whose start could not be stored
	// (task storage allocation failed).
	InflightFailures uint64
	// NonFiles counts operations of the targets on descriptors that are
	// not regular files (sockets, pipes): not followed, by design.
	NonFiles uint64
	// Malformed counts ring buffer records too short to decode.
	Malformed uint64
	// Unpaired counts journal records whose other half was never seen
	// (a commit that started before the tracer, a sync still running at
	// Close).
	Unpaired uint64
}

// String is the one-line summary printed at the end of a command.
func (c FSCounters) String() string {
	return fmt.Sprintf("events=%d journal-events=%d drops=%d histogram-overflow=%d inflight-failures=%d non-files=%d malformed=%d unpaired=%d",
		c.Events, c.JournalEvents, c.Drops, c.HistogramOverflow, c.InflightFailures, c.NonFiles, c.Malformed, c.Unpaired)
}

// KernelDev converts a kernel dev_t (MAJOR<<20 | MINOR, what tracepoints
// and struct super_block hold) to the encoding of stat(2) and unix.Mkdev.
func KernelDev(d uint32) uint64 {
	major, minor := uint64(d>>20), uint64(d&(1<<20-1))
	// unix.Mkdev's layout, written out so this file builds everywhere.
	return (major&0x00000fff)<<8 | (major&0xfffff000)<<32 | (minor & 0x000000ff) | (minor&0xffffff00)<<12
}
