package offcpu

import "time"

// This file builds on every OS: it turns the kernel side's journal records
// (one per tracepoint hit) into JournalEvents, and is tested without a
// kernel.

// journalRec is one fs_journal record of bpf/fs.h, decoded.
type journalRec struct {
	rec         uint32 // fsRec*
	dev         uint32 // kernel dev_t
	transaction uint32
	tid, tgid   uint32
	sync        uint32
	ts          uint64
	ino         uint64
	val         int64
	jiffies     [6]uint64
	n           [4]uint32
}

// The record kinds (enum fs_rec of bpf/fs.h; fs_linux.go checks them
// against the generated constants).
const (
	fsRecOp            = 1
	fsRecJBD2Start     = 2
	fsRecJBD2End       = 3
	fsRecJBD2RunStats  = 4
	fsRecJBD2Handle    = 5
	fsRecExt4SyncEnter = 6
	fsRecExt4SyncExit  = 7
	fsRecXFSLogForce   = 8
	fsRecXFSFileFsync  = 9
	fsRecExt4FCStart   = 10
	fsRecExt4FCStop    = 11
)

type commitKey struct{ dev, transaction uint32 }

type pendingCommit struct {
	ev                  JournalEvent
	started, ended, run bool
	last                uint64 // ts of the newest record
}

// journalAssembler pairs jbd2_start_commit, jbd2_end_commit and
// jbd2_run_stats of one transaction into one JournalEvent, and
// ext4_sync_file_enter and _exit of one thread into another. A commit is
// complete once it has ended and its run stats are in (the kernel emits
// them in either order depending on its version); one still incomplete
// journalStale after its last record is given up: emitted with what it has
// (a commit that started before the tracer has no start), or dropped if it
// only started.
type journalAssembler struct {
	jiffy   time.Duration
	commits map[commitKey]*pendingCommit
	syncs   map[uint32]journalRec
	fcs     map[uint32]journalRec // fast commits in flight, by thread
	// unpaired counts records whose other half never came.
	unpaired uint64
}

const journalStale = uint64(10 * time.Second)

func newJournalAssembler(hz int) *journalAssembler {
	return &journalAssembler{jiffy: time.Second / time.Duration(hz), commits: map[commitKey]*pendingCommit{},
		syncs: map[uint32]journalRec{}, fcs: map[uint32]journalRec{}}
}

func (a *journalAssembler) jiffies(j uint64) time.Duration { return time.Duration(j) * a.jiffy }

// add takes one record and calls emit for every event it completes.
func (a *journalAssembler) add(r *journalRec, emit func(JournalEvent)) {
	dev := KernelDev(r.dev)
	switch r.rec {
	case fsRecJBD2Start, fsRecJBD2End, fsRecJBD2RunStats:
		k := commitKey{r.dev, r.transaction}
		p := a.commits[k]
		if p == nil {
			p = &pendingCommit{ev: JournalEvent{Kind: JournalJBD2Commit, Dev: dev, Transaction: r.transaction}}
			a.commits[k] = p
		}
		p.last = r.ts
		switch r.rec {
		case fsRecJBD2Start:
			p.started = true
			p.ev.Start = r.ts
			p.ev.TID = r.tid
			p.ev.Sync = p.ev.Sync || r.sync != 0
		case fsRecJBD2End:
			p.ended = true
			p.ev.End = r.ts
			p.ev.TID = r.tid
			p.ev.Sync = p.ev.Sync || r.sync != 0
		default:
			p.run = true
			e := &p.ev
			e.Wait, e.RequestDelay, e.Running = a.jiffies(r.jiffies[0]), a.jiffies(r.jiffies[1]), a.jiffies(r.jiffies[2])
			e.Locked, e.Flushing, e.Logging = a.jiffies(r.jiffies[3]), a.jiffies(r.jiffies[4]), a.jiffies(r.jiffies[5])
			e.Handles, e.Blocks, e.BlocksLogged = r.n[0], r.n[1], r.n[2]
		}
		if p.ended && p.run {
			a.finish(k, p, emit)
		}
		a.expire(r.ts, emit)
	case fsRecJBD2Handle:
		interval := a.jiffies(r.jiffies[0])
		emit(JournalEvent{Kind: JournalJBD2Handle, Dev: dev, Transaction: r.transaction, TID: r.tid,
			Start: r.ts - min(uint64(interval), r.ts), End: r.ts, Blocks: r.n[3], Sync: r.sync != 0})
	case fsRecExt4SyncEnter:
		if _, ok := a.syncs[r.tid]; ok {
			a.unpaired++ // an exit was lost
		}
		a.syncs[r.tid] = *r
	case fsRecExt4SyncExit:
		in, ok := a.syncs[r.tid]
		if !ok || in.dev != r.dev || in.ino != r.ino {
			a.unpaired++ // entered before the tracer started
			return
		}
		delete(a.syncs, r.tid)
		emit(JournalEvent{Kind: JournalExt4SyncFile, Dev: dev, TID: r.tid, Ino: r.ino, Start: in.ts, End: r.ts,
			Sync: in.sync != 0, Ret: int32(r.val)})
	case fsRecExt4FCStart:
		if _, ok := a.fcs[r.tid]; ok {
			a.unpaired++
		}
		a.fcs[r.tid] = *r
	case fsRecExt4FCStop:
		in, ok := a.fcs[r.tid]
		if !ok || in.dev != r.dev {
			a.unpaired++
			return
		}
		delete(a.fcs, r.tid)
		emit(JournalEvent{Kind: JournalExt4FastCommit, Dev: dev, Transaction: r.transaction, TID: r.tid, Start: in.ts, End: r.ts,
			Blocks: r.n[0], Handles: r.n[1], Ret: int32(r.val)})
	case fsRecXFSLogForce:
		emit(JournalEvent{Kind: JournalXFSLogForce, Dev: dev, TID: r.tid, Start: r.ts, End: r.ts})
	case fsRecXFSFileFsync:
		emit(JournalEvent{Kind: JournalXFSFileFsync, Dev: dev, TID: r.tid, Ino: r.ino, Start: r.ts, End: r.ts})
	}
}

func (a *journalAssembler) finish(k commitKey, p *pendingCommit, emit func(JournalEvent)) {
	delete(a.commits, k)
	e := p.ev
	if !p.started || !p.ended || !p.run {
		a.unpaired++
	}
	if !p.ended {
		e.End = p.last
	}
	if !p.started {
		// Started before the tracer: the phases after the start of the
		// commit place it, to a jiffy.
		e.Start = e.End - min(uint64(e.Locked+e.Flushing+e.Logging), e.End)
	}
	emit(e)
}

// expire gives up on commits whose last record is journalStale older than
// now.
func (a *journalAssembler) expire(now uint64, emit func(JournalEvent)) {
	for k, p := range a.commits {
		if now > p.last+journalStale {
			a.giveUp(k, p, emit)
		}
	}
}

// giveUp emits what is known of an incomplete commit, or drops one that
// only started: its length is unknown.
func (a *journalAssembler) giveUp(k commitKey, p *pendingCommit, emit func(JournalEvent)) {
	if p.ended || p.run {
		a.finish(k, p, emit)
		return
	}
	delete(a.commits, k)
	a.unpaired++
}

// flush emits every incomplete commit (at the end of tracing). Syncs still
// running are counted as unpaired.
func (a *journalAssembler) flush(emit func(JournalEvent)) {
	for k, p := range a.commits {
		a.giveUp(k, p, emit)
	}
	a.unpaired += uint64(len(a.syncs) + len(a.fcs))
	clear(a.syncs)
	clear(a.fcs)
}
