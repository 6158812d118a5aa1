package fslens

import (
	"sort"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// OpRecord converts a traced operation of file f, by a thread named
// thread, into the bundle's record.
func OpRecord(ev *offcpu.FSEvent, f *bundle.FSFileInfo, thread string) bundle.FSOp {
	op := bundle.FSOp{Op: ev.Op.String(), File: f, TID: ev.TID, TGID: ev.TGID, Thread: thread, Start: ev.Start, End: ev.End}
	if ev.Ret < 0 {
		op.Errno = int32(-ev.Ret)
	} else {
		op.Bytes = ev.Ret
	}
	return op
}

// JournalRecord converts a journal event into the bundle's record.
func JournalRecord(j *offcpu.JournalEvent) bundle.JournalEvent {
	return bundle.JournalEvent{Kind: j.Kind.String(), Dev: DevString(j.Dev), Transaction: j.Transaction, TID: j.TID,
		Start: j.Start, End: j.End, Wait: j.Wait, RequestDelay: j.RequestDelay, Running: j.Running, Locked: j.Locked,
		Flushing: j.Flushing, Logging: j.Logging, Handles: j.Handles, Blocks: j.Blocks, BlocksLogged: j.BlocksLogged,
		Ino: j.Ino, Sync: j.Sync, Ret: j.Ret}
}

// Overlap is the journal activity an operation overlapped on its file's
// device.
type Overlap struct {
	// Commit is the jbd2 commit that overlapped the operation longest, nil
	// if none did.
	Commit *bundle.JournalEvent
	// Shared is how long the commit and the operation overlapped.
	Shared time.Duration
	// LogForces counts the XFS log forces during the operation; ByThread
	// is set when one was forced by the operation's own thread (its fsync
	// waited for the log).
	LogForces int
	ByThread  bool
}

// Any reports whether the operation overlapped journal activity.
func (o Overlap) Any() bool { return o.Commit != nil || o.LogForces > 0 }

// JournalIndex keeps the recent journal events per device to find the
// ones a slow operation overlapped. It forgets events that ended Window
// before the newest one, so its memory is bounded by the journal's rate.
type JournalIndex struct {
	// Window is how far back an operation can reach (default 60s).
	Window time.Duration
	byDev  map[string][]bundle.JournalEvent
	newest uint64
}

// NewJournalIndex returns an empty index.
func NewJournalIndex() *JournalIndex {
	return &JournalIndex{Window: time.Minute, byDev: map[string][]bundle.JournalEvent{}}
}

// Add indexes a commit or a log force; other kinds are not what operations
// are tied to and are ignored.
func (x *JournalIndex) Add(j *bundle.JournalEvent) {
	if j.Kind != bundle.JournalJBD2Commit && j.Kind != bundle.JournalXFSLogForce {
		return
	}
	x.newest = max(x.newest, j.End)
	evs := append(x.byDev[j.Dev], *j)
	// Drop what ended before the window; events arrive roughly in order,
	// so the old ones are at the front.
	cut := 0
	for cut < len(evs) && evs[cut].End+uint64(x.Window) < x.newest {
		cut++
	}
	if cut > 0 {
		evs = append(evs[:0], evs[cut:]...)
	}
	x.byDev[j.Dev] = evs
}

// Overlap finds the journal activity on op's device during op.
func (x *JournalIndex) Overlap(op *bundle.FSOp) Overlap {
	var o Overlap
	if op.File == nil {
		return o
	}
	for i := range x.byDev[op.File.Dev] {
		j := &x.byDev[op.File.Dev][i]
		switch j.Kind {
		case bundle.JournalJBD2Commit:
			lo, hi := max(j.Start, op.Start), min(j.End, op.End)
			if hi > lo && time.Duration(hi-lo) > o.Shared {
				c := *j
				o.Commit, o.Shared = &c, time.Duration(hi-lo)
			}
		case bundle.JournalXFSLogForce:
			if j.Start >= op.Start && j.Start <= op.End {
				o.LogForces++
				if j.TID == op.TID {
					o.ByThread = true
				}
			}
		}
	}
	return o
}

// DeviceJournal sums the journal activity of one device.
type DeviceJournal struct {
	Dev   string
	Mount *Mount // nil when the device is not in the target's mounts
	// Commits of jbd2 transactions: their durations (start to end), and
	// the sums of their phases (jiffy resolution).
	Commits, SyncCommits                  int
	CommitTime                            Histogram
	Locked, Flushing, Logging, RunningSum time.Duration
	Handles, Blocks                       uint64
	// Slowest are the longest commits, longest first.
	Slowest []bundle.JournalEvent
	// LongHandles counts jbd2 handles the targets held for a jiffy or more.
	LongHandles int
	// LogForces counts XFS log forces; Syncs the targets' ext4_sync_file
	// and xfs_file_fsync calls.
	LogForces, Syncs int
	// SlowOps is the number of slow operations on files of this device;
	// InCommit those that overlapped a commit or a log force.
	SlowOps, InJournal int
}

const slowestKept = 5

// Journals sums journal events per device. Use Add and AddOp, then List.
type Journals struct {
	byDev map[string]*DeviceJournal
}

// NewJournals returns empty sums.
func NewJournals() *Journals { return &Journals{byDev: map[string]*DeviceJournal{}} }

func (s *Journals) dev(d string) *DeviceJournal {
	dj := s.byDev[d]
	if dj == nil {
		dj = &DeviceJournal{Dev: d, CommitTime: Histogram{Op: "commit", Buckets: make([]uint64, offcpu.FSHistBuckets)}}
		s.byDev[d] = dj
	}
	return dj
}

// Add counts one journal event.
func (s *Journals) Add(j *bundle.JournalEvent) {
	d := s.dev(j.Dev)
	switch j.Kind {
	case bundle.JournalJBD2Commit:
		d.Commits++
		if j.End > j.Start {
			ns := j.End - j.Start
			h := Histogram{Count: 1, SumNs: ns, MaxNs: ns, Buckets: make([]uint64, offcpu.FSHistBuckets)}
			h.Buckets[min(log2(ns), offcpu.FSHistBuckets-1)]++
			d.CommitTime.Add(&h)
		}
		d.Locked += j.Locked
		d.Flushing += j.Flushing
		d.Logging += j.Logging
		d.RunningSum += j.Running
		d.Handles += uint64(j.Handles)
		d.Blocks += uint64(j.Blocks)
		d.Slowest = append(d.Slowest, *j)
		sort.SliceStable(d.Slowest, func(a, b int) bool { return d.Slowest[a].Duration() > d.Slowest[b].Duration() })
		if len(d.Slowest) > slowestKept {
			d.Slowest = d.Slowest[:slowestKept]
		}
	case "jbd2_handle":
		d.LongHandles++
	case bundle.JournalXFSLogForce:
		d.LogForces++
	case bundle.JournalExt4SyncFile, bundle.JournalXFSFileFsync:
		d.Syncs++
	}
}

// AddSync counts a synchronous jbd2 commit (jbd2_start_commit's
// sync_commit: a handle of the transaction asked for it, as O_SYNC writes
// and sync mounts do); the bundle's record does not carry it.
func (s *Journals) AddSync(dev string) { s.dev(dev).SyncCommits++ }

// AddOp counts a slow operation and whether it overlapped the journal.
func (s *Journals) AddOp(op *bundle.FSOp, o Overlap) {
	if op.File == nil || op.File.Dev == "" {
		return
	}
	d := s.dev(op.File.Dev)
	d.SlowOps++
	if o.Any() {
		d.InJournal++
	}
}

// List returns the devices, with mounts from byDev (DevString keys), in
// device order.
func (s *Journals) List(mounts map[uint64]Mount) []DeviceJournal {
	byStr := map[string]Mount{}
	for dev, m := range mounts {
		byStr[DevString(dev)] = m
	}
	var out []DeviceJournal
	for _, d := range s.byDev {
		dj := *d
		if m, ok := byStr[d.Dev]; ok {
			dj.Mount = &m
		}
		out = append(out, dj)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Dev < out[b].Dev })
	return out
}

func log2(v uint64) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}
