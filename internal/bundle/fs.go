package bundle

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// FSStreamFile is the filesystem lens's stream: the target's slow file
// operations, the journal activity of the devices it wrote to, and the
// latency histograms of every operation (fast ones included).
const FSStreamFile = "fs.jsonl"

// The filesystem stream format, fs.jsonl, version 1. One JSON object per
// line:
//
//	{"format":"lockscope-fs","version":1}                               first line
//	{"file":3,"path":"/var/kafka/t-0/00..0.log","dev":"7:0","ino":12,
//	 "topic":"t","partition":0,"kind":"log"}                            a file, defined once
//	{"op":"write","f":3,"tid":..,"tgid":..,"thread":"..","bytes":..,
//	 "errno":0,"start":..,"end":..}                                     an operation (f 0: unresolved)
//	{"journal":"jbd2_commit","jdev":"7:0","transaction":..,"tid":..,
//	 "start":..,"end":..,"wait_ns":..,...}                              journal activity
//	{"hist":"fsync","f":3,"count":..,"sum_ns":..,"max_ns":..,
//	 "hist_bytes":..,"buckets":[..]}                                    a latency histogram
//
// Times are CLOCK_MONOTONIC nanoseconds. Devices are "major:minor" as
// /proc/PID/mountinfo writes them. Histogram bucket i counts operations
// that took [2^i, 2^(i+1)) ns. A reader skips lines with keys it does not
// know, so fields can be added within a version.
const (
	fsFormat  = "lockscope-fs"
	fsVersion = 1
)

// Journal event kinds.
const (
	JournalJBD2Commit   = "jbd2_commit"    // one ext4 journal transaction committed
	JournalXFSLogForce  = "xfs_log_force"  // an XFS log force (fsync waits on it)
	JournalExt4SyncFile = "ext4_sync_file" // ext4_sync_file_enter..exit of the target
	JournalXFSFileFsync = "xfs_file_fsync" // xfs_file_fsync of the target
	// JournalJBD2Handle is a jbd2 handle a target thread held for a jiffy
	// or more: its transaction's commit waited for it.
	JournalJBD2Handle = "jbd2_handle"
	// JournalExt4FastCommit is an ext4 fast commit (fast_commit feature)
	// in the syncing thread.
	JournalExt4FastCommit = "ext4_fast_commit"
)

// FSFileInfo is a file the target did I/O on, resolved to a path and, where
// the path is a Kafka log directory's, to its topic-partition.
type FSFileInfo struct {
	Path string `json:"path,omitempty"`
	Dev  string `json:"dev,omitempty"`
	Ino  uint64 `json:"ino,omitempty"`
	// Topic and Partition come from the `topic-N` directory; Partition is
	// -1 when the file is not in one.
	Topic     string `json:"topic,omitempty"`
	Partition int    `json:"partition"`
	// Kind is the file's role: "log", "index", "timeindex", "snapshot",
	// "checkpoint", "other".
	Kind string `json:"kind,omitempty"`
}

// TopicPartition is "topic-N", or "" for a file outside partitions.
func (f *FSFileInfo) TopicPartition() string {
	if f == nil || f.Topic == "" || f.Partition < 0 {
		return ""
	}
	return fmt.Sprintf("%s-%d", f.Topic, f.Partition)
}

// FSOp is one file operation of the target slower than the lens's
// threshold.
type FSOp struct {
	Op     string // "write", "pwrite64", "writev", "fsync", "fdatasync", ...
	File   *FSFileInfo
	TID    uint32
	TGID   uint32
	Thread string
	// Bytes is what the call returned when it succeeded; Errno is its error.
	Bytes      int64
	Errno      int32
	Start, End uint64
}

// Duration is how long the call took.
func (o *FSOp) Duration() time.Duration { return time.Duration(o.End - o.Start) }

// JournalEvent is journal activity on a device: a jbd2 transaction's commit
// (with the phases jbd2_run_stats reports), an XFS log force, or a sync of a
// file by the target.
type JournalEvent struct {
	Kind        string
	Dev         string
	Transaction uint32
	// TID is the thread that did it (jbd2's kernel thread for commits).
	TID        uint32
	Start, End uint64
	// The jbd2 phases (jbd2_run_stats; jiffy resolution).
	Wait, RequestDelay, Running, Locked, Flushing, Logging time.Duration
	Handles, Blocks, BlocksLogged                          uint32
	// Ino is the file synced (ext4_sync_file, xfs_file_fsync).
	Ino uint64
	// Sync marks a jbd2 commit someone waited for (fsync) and a datasync
	// ext4_sync_file; Ret is a sync's error or a fast commit's outcome (0
	// committed, 1 ineligible: fell back to a full commit).
	Sync bool
	Ret  int32
}

// Duration is the event's length.
func (j *JournalEvent) Duration() time.Duration { return time.Duration(j.End - j.Start) }

// FSHistogram counts every operation of one kind on one file, fast ones
// included.
type FSHistogram struct {
	Op    string
	File  *FSFileInfo
	Count uint64
	SumNs uint64
	// MaxNs is the longest operation; Bytes what the operations moved.
	MaxNs uint64
	Bytes uint64
	// Buckets[i] counts operations that took [2^i, 2^(i+1)) ns.
	Buckets []uint64
}

// FSDevice is a filesystem the target wrote to, as mounted when captured.
type FSDevice struct {
	Dev        string `json:"dev"`
	MountPoint string `json:"mount_point"`
	FSType     string `json:"fstype"`
	// Options are the mount's and the superblock's options
	// ("rw,relatime,data=ordered").
	Options string `json:"options,omitempty"`
	Source  string `json:"source,omitempty"`
}

// FS is how the filesystem lens ran.
type FS struct {
	File string `json:"file"`
	// Min is the threshold above which an operation is recorded one by one.
	Min     time.Duration `json:"min_ns"`
	Reads   bool          `json:"reads,omitempty"`
	Devices []FSDevice    `json:"devices,omitempty"`
	// Counters are the tracer's totals (events, drops, histogram overflow).
	Counters map[string]uint64 `json:"counters,omitempty"`
}

type fsLine struct {
	Format  string `json:"format,omitempty"`
	Version int    `json:"version,omitempty"`

	FileID *uint32 `json:"file,omitempty"`
	*FSFileInfo

	Op      string `json:"op,omitempty"`
	Journal string `json:"journal,omitempty"`
	Hist    string `json:"hist,omitempty"`
	F       uint32 `json:"f,omitempty"`

	TID    uint32 `json:"tid,omitempty"`
	TGID   uint32 `json:"tgid,omitempty"`
	Thread string `json:"thread,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Errno  int32  `json:"errno,omitempty"`
	Start  uint64 `json:"start,omitempty"`
	End    uint64 `json:"end,omitempty"`

	JDev         string `json:"jdev,omitempty"`
	Transaction  uint32 `json:"transaction,omitempty"`
	Wait         int64  `json:"wait_ns,omitempty"`
	RequestDelay int64  `json:"request_delay_ns,omitempty"`
	Running      int64  `json:"running_ns,omitempty"`
	Locked       int64  `json:"locked_ns,omitempty"`
	Flushing     int64  `json:"flushing_ns,omitempty"`
	Logging      int64  `json:"logging_ns,omitempty"`
	Handles      uint32 `json:"handles,omitempty"`
	Blocks       uint32 `json:"blocks,omitempty"`
	BlocksLogged uint32 `json:"blocks_logged,omitempty"`
	JIno         uint64 `json:"jino,omitempty"`
	Sync         bool   `json:"sync,omitempty"`
	Ret          int32  `json:"ret,omitempty"`

	Count   uint64   `json:"count,omitempty"`
	SumNs   uint64   `json:"sum_ns,omitempty"`
	MaxNs   uint64   `json:"max_ns,omitempty"`
	HBytes  uint64   `json:"hist_bytes,omitempty"`
	Buckets []uint64 `json:"buckets,omitempty"`
}

// FSWriter writes the filesystem stream, defining each file once.
type FSWriter struct {
	w       *bufio.Writer
	files   map[FSFileInfo]uint32
	n       int64
	started bool
	err     error
}

// NewFSWriter starts a filesystem stream on w (its header line is written
// on the first record or on Flush).
func NewFSWriter(w io.Writer) *FSWriter {
	return &FSWriter{w: bufio.NewWriterSize(w, 64<<10), files: map[FSFileInfo]uint32{}}
}

func (o *FSWriter) header() {
	if !o.started {
		o.started = true
		o.line(&fsLine{Format: fsFormat, Version: fsVersion})
	}
}

func (o *FSWriter) line(v *fsLine) {
	if o.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		o.err = err
		return
	}
	b = append(b, '\n')
	if _, err := o.w.Write(b); err != nil {
		o.err = hint(err)
	}
}

func (o *FSWriter) file(f *FSFileInfo) uint32 {
	o.header()
	if f == nil {
		return 0
	}
	id, ok := o.files[*f]
	if !ok {
		id = uint32(len(o.files) + 1)
		o.files[*f] = id
		o.line(&fsLine{FileID: &id, FSFileInfo: f})
	}
	return id
}

func (o *FSWriter) result(what string) error {
	o.n++
	if o.err != nil {
		return fmt.Errorf("writing filesystem %s: %w", what, o.err)
	}
	return nil
}

// WriteOp appends one operation.
func (o *FSWriter) WriteOp(op *FSOp) error {
	f := o.file(op.File)
	o.line(&fsLine{Op: op.Op, F: f, TID: op.TID, TGID: op.TGID, Thread: op.Thread, Bytes: op.Bytes,
		Errno: op.Errno, Start: op.Start, End: op.End})
	return o.result("operations")
}

// WriteJournal appends one journal event.
func (o *FSWriter) WriteJournal(j *JournalEvent) error {
	o.header()
	o.line(&fsLine{Journal: j.Kind, JDev: j.Dev, Transaction: j.Transaction, TID: j.TID, Start: j.Start, End: j.End,
		Wait: int64(j.Wait), RequestDelay: int64(j.RequestDelay), Running: int64(j.Running), Locked: int64(j.Locked),
		Flushing: int64(j.Flushing), Logging: int64(j.Logging), Handles: j.Handles, Blocks: j.Blocks,
		BlocksLogged: j.BlocksLogged, JIno: j.Ino, Sync: j.Sync, Ret: j.Ret})
	return o.result("journal events")
}

// WriteHistogram appends one histogram.
func (o *FSWriter) WriteHistogram(h *FSHistogram) error {
	f := o.file(h.File)
	o.line(&fsLine{Hist: h.Op, F: f, Count: h.Count, SumNs: h.SumNs, MaxNs: h.MaxNs, HBytes: h.Bytes, Buckets: h.Buckets})
	return o.result("histograms")
}

// Count is the number of records written.
func (o *FSWriter) Count() int64 { return o.n }

// Flush writes out what is buffered.
func (o *FSWriter) Flush() error {
	o.header()
	if o.err == nil {
		if err := o.w.Flush(); err != nil {
			o.err = hint(err)
		}
	}
	if o.err != nil {
		return fmt.Errorf("writing filesystem stream: %w", o.err)
	}
	return nil
}

// FSData is a whole filesystem stream (it holds only slow operations, so it
// is small enough to keep in memory).
type FSData struct {
	Ops        []FSOp
	Journal    []JournalEvent
	Histograms []FSHistogram
}

// ReadFS reads a filesystem stream. A malformed line is an error naming its
// line number.
func ReadFS(r io.Reader) (*FSData, error) {
	files := map[uint32]*FSFileInfo{}
	d := &FSData{}
	lookup := func(id uint32, lineNo int) (*FSFileInfo, error) {
		if id == 0 {
			return nil, nil
		}
		f, ok := files[id]
		if !ok {
			return nil, fmt.Errorf("filesystem stream line %d: undefined file %d", lineNo, id)
		}
		return f, nil
	}
	err := readStream(r, "filesystem", fsFormat, fsVersion, 64<<10,
		func(l *fsLine) (string, int) { return l.Format, l.Version },
		func(lineNo int, l *fsLine) error {
			switch {
			case l.FileID != nil:
				f := FSFileInfo{}
				if l.FSFileInfo != nil {
					f = *l.FSFileInfo
				}
				files[*l.FileID] = &f
			case l.Op != "":
				f, err := lookup(l.F, lineNo)
				if err != nil {
					return err
				}
				d.Ops = append(d.Ops, FSOp{Op: l.Op, File: f, TID: l.TID, TGID: l.TGID, Thread: l.Thread, Bytes: l.Bytes,
					Errno: l.Errno, Start: l.Start, End: l.End})
			case l.Journal != "":
				d.Journal = append(d.Journal, JournalEvent{Kind: l.Journal, Dev: l.JDev, Transaction: l.Transaction, TID: l.TID,
					Start: l.Start, End: l.End, Wait: time.Duration(l.Wait), RequestDelay: time.Duration(l.RequestDelay),
					Running: time.Duration(l.Running), Locked: time.Duration(l.Locked), Flushing: time.Duration(l.Flushing),
					Logging: time.Duration(l.Logging), Handles: l.Handles, Blocks: l.Blocks, BlocksLogged: l.BlocksLogged,
					Ino: l.JIno, Sync: l.Sync, Ret: l.Ret})
			case l.Hist != "":
				f, err := lookup(l.F, lineNo)
				if err != nil {
					return err
				}
				d.Histograms = append(d.Histograms, FSHistogram{Op: l.Hist, File: f, Count: l.Count, SumNs: l.SumNs, MaxNs: l.MaxNs,
					Bytes: l.HBytes, Buckets: l.Buckets})
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return d, nil
}
