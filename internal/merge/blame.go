package merge

import (
	"slices"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/pprofbuild"
)

// Blame: the time a thread waited for a lock is charged to what the lock's
// holder did meanwhile. The holder is the thread that woke the waiter when
// it got the lock (HotSpot's monitor exit unparks a successor,
// ReentrantLock.unlock the next waiter); what it did comes from its own
// off-CPU intervals (kernel frames, Java context) and samples. A holder that
// was itself waiting for a lock is followed to the thread that woke it, up
// to MaxBlameDepth hops, never back to a thread already in the chain.

// MaxBlameDepth bounds the holder chains followed.
const MaxBlameDepth = 3

// BlameStats counts how the lock waits were attributed.
type BlameStats struct {
	// LockWaits is the off-CPU intervals known to wait for a lock.
	LockWaits int64 `json:"lock_waits"`
	// Attributed ones were charged to their waker's activity.
	Attributed int64 `json:"attributed"`
	// NoWaker: nobody woke the thread (a timeout, an interrupt, a spin
	// that succeeded): not blamed.
	NoWaker int64 `json:"no_waker"`
	// ForeignWaker: the waker is not a thread of the profiled JVM (a
	// kernel thread, an interrupt's context): not blamed.
	ForeignWaker int64 `json:"foreign_waker"`
	// ConditionWakeups are wakeups out of Object.wait or Condition.await:
	// notifications, not lock hand-offs, so never blamed.
	ConditionWakeups int64 `json:"condition_wakeups"`
	// OwnerAgrees and OwnerDisagrees compare the waker with the JDK's
	// previousOwner of jdk.JavaMonitorEnter, where it is recorded.
	OwnerAgrees    int64 `json:"previous_owner_agrees"`
	OwnerDisagrees int64 `json:"previous_owner_disagrees"`
	// Chained counts segments charged through a second or third holder.
	Chained int64 `json:"chained"`
	// Charged is the waiting time charged, Unidentified the part of it
	// whose holder the wakeups do not name (ns).
	Charged      int64 `json:"charged_ns"`
	Unidentified int64 `json:"unidentified_ns"`
}

// stackWait tells from a sampled stack what a blocked thread waits for:
// HotSpot's monitor enter or an AbstractQueuedSynchronizer acquire is a
// lock, Object.wait or a Condition's await a condition.
func stackWait(s *jfr.Stack) waitKind {
	if s == nil {
		return waitUnknown
	}
	for i := range s.Frames {
		if i > 24 {
			break
		}
		m := s.Frames[i].Method
		if m == nil {
			continue
		}
		class := ""
		if m.Class != nil {
			class = m.Class.Name
		}
		switch {
		case strings.HasPrefix(m.Name, "ObjectMonitor::enter"), strings.HasPrefix(m.Name, "ObjectMonitor::EnterI"),
			strings.HasPrefix(m.Name, "ObjectSynchronizer::enter"):
			return waitLock
		case strings.HasPrefix(m.Name, "ObjectMonitor::wait"), strings.HasPrefix(m.Name, "ObjectSynchronizer::wait"):
			return waitCondition
		case strings.Contains(class, "ConditionObject"):
			return waitCondition
		case strings.HasSuffix(class, "AbstractQueuedSynchronizer") || strings.HasSuffix(class, "AbstractQueuedLongSynchronizer"):
			if strings.HasPrefix(m.Name, "acquire") {
				return waitLock
			}
		}
	}
	return waitUnknown
}

// segment is a stretch of a waiter's wait and what its holder did then:
// the holder's stack, innermost first, down to the "[held by ...]" frame.
type segment struct {
	start, end int64
	locs       []*profile.Location
	// unidentified: nobody known held the lock then.
	unidentified bool
}

// release is a lock hand-off: holder released the lock at t, by waking a
// thread that waited for it or, as the JDK records in previousOwner, just
// before a waiter took it.
type release struct {
	t      int64
	holder uint32
}

// emitBlame charges every lock wait to its holders' activity.
//
// A long wait spans several holders: the one that wakes the waiter at the
// end is only the last. So the hand-offs of each lock (known by its JFR
// address) are collected from every waiter that got the lock, each giving
// a tenure that ends when its holder released the lock and starts when that
// holder entered it (after it stopped waiting for work, or for this lock).
// A wait is charged to the tenures it overlaps; time no tenure covers (the
// lock was free, or taken by a thread that never queued) is "[holder not
// identified]". Waits on a lock of unknown address follow their waker.
func (m *merger) emitBlame(tids []uint32) {
	bs := &m.stats.Blame
	m.releases = map[uint64][]release{}
	for addr, hs := range m.handoffs {
		for _, h := range hs {
			if m.threads[h.holder] != nil {
				m.releases[addr] = append(m.releases[addr], h)
			}
		}
	}
	for _, tid := range tids {
		for _, iv := range m.threads[tid].ivs {
			if iv.wait == waitLock && iv.acquired && iv.lockAddr != 0 && iv.waker != 0 && iv.waker != tid && m.threads[iv.waker] != nil {
				m.releases[iv.lockAddr] = append(m.releases[iv.lockAddr], release{iv.end, iv.waker})
			}
		}
	}
	for _, rs := range m.releases {
		slices.SortFunc(rs, func(a, b release) int { return cmpInt(a.t, b.t) })
	}
	for _, tid := range tids {
		th := m.threads[tid]
		for _, iv := range th.ivs {
			if iv.wait == waitCondition && iv.waker != 0 {
				bs.ConditionWakeups++
				continue
			}
			if iv.wait != waitLock {
				continue
			}
			bs.LockWaits++
			if iv.prevOwner != 0 && iv.acquired {
				if iv.prevOwner == iv.waker {
					bs.OwnerAgrees++
				} else {
					bs.OwnerDisagrees++
				}
			}
			var segs []segment
			switch {
			case iv.lockAddr != 0 && len(m.releases[iv.lockAddr]) > 0:
				segs = m.tenures(iv.start, iv.end, iv.lockAddr, 1, []uint32{tid})
			case iv.waker == 0 || iv.waker == tid:
				bs.NoWaker++
				continue
			case m.threads[iv.waker] == nil:
				bs.ForeignWaker++
				continue
			default:
				segs = m.holderActivity(iv.start, iv.end, iv.waker, iv.lockAddr, 1, []uint32{tid})
			}
			bs.Attributed++
			site := append([]*profile.Location{iv.lockLeaf}, iv.lockSite...)
			site = append(site, m.b.Synthetic("["+pprofbuild.ThreadPool(th.name)+"]"))
			for _, seg := range segs {
				if seg.unidentified {
					bs.Unidentified += seg.end - seg.start
				}
				bs.Charged += seg.end - seg.start
				locs := append(slices.Clone(seg.locs), site...)
				slow := m.slowPart(seg.start, seg.end)
				for _, part := range []struct {
					w string
					v int64
				}{{Slow, slow}, {Baseline, seg.end - seg.start - slow}} {
					if part.v <= 0 {
						continue
					}
					var v [nTypes]int64
					v[iBlame] = part.v
					m.b.Add(locs, v[:], m.labels(th, tid, "", "blocked", part.w))
				}
			}
		}
	}
}

// tenures charges [a, b) of a wait for the lock at addr to the lock's
// holders, latest first, from its hand-offs. chain holds the threads
// already on the chain (the waiter first), never charged again.
func (m *merger) tenures(a, b int64, addr uint64, depth int, chain []uint32) []segment {
	rs := m.releases[addr]
	var out []segment
	unidentified := func(s, e int64) {
		if e > s {
			out = append(out, segment{start: s, end: e, unidentified: true,
				locs: []*profile.Location{m.b.Synthetic("[holder not identified]")}})
		}
	}
	// Start from the first hand-off at or after b: its holder had the lock
	// at b (a wait that ends without the lock, a timed re-check, lies
	// inside that holder's tenure).
	cursor := b
	i := sortSearch(len(rs), func(i int) bool { return rs[i].t >= b })
	if i == len(rs) {
		i--
	}
	for ; i >= 0 && cursor > a; i-- {
		r := rs[i]
		if r.t <= a {
			break
		}
		if slices.Contains(chain, r.holder) {
			continue // a hand-off to or from a thread already on the chain
		}
		rel := m.releasePoint(r.holder, r.t, a)
		// The holder entered after its previous release of this lock.
		floor := a
		for j := i - 1; j >= 0 && rs[j].t > a; j-- {
			if rs[j].holder == r.holder && rs[j].t < rel {
				floor = rs[j].t
				break
			}
		}
		start := m.entry(r.holder, rel, floor, addr)
		if start >= cursor {
			continue // this tenure lies after the part still to charge
		}
		unidentified(min(r.t, cursor), cursor)
		if e := min(r.t, cursor); e > rel {
			// Released, but the thread it woke had not run yet (a
			// successor waiting for a CPU): nobody held the lock.
			out = append(out, segment{start: max(rel, start), end: e,
				locs: []*profile.Location{m.b.Synthetic("[handed over: the next owner waited for a CPU]")}})
		}
		out = append(out, m.holderActivity(start, min(rel, cursor), r.holder, addr, depth, chain)...)
		cursor = start
	}
	unidentified(a, cursor)
	return out
}

// releasePoint is when thread tid, known to have released a lock by t,
// let go of it: before the waits for work it was already back in at t.
// (The JDK records a monitor's previous owner when the next one gets it,
// which can be milliseconds after the release when the woken successor
// waits for a CPU.)
func (m *merger) releasePoint(tid uint32, t, lower int64) int64 {
	var js []*interval
	m.threads[tid].overlapping(lower, t, func(j *interval) { js = append(js, j) })
	point := t
	for i := len(js) - 1; i >= 0 && js[i].wait == waitCondition; i-- {
		point = max(lower, js[i].start)
	}
	return point
}

// entry is when thread tid, which released the lock at addr at t, had
// entered it: the end of its last wait for work or for this lock before
// t, no earlier than lower.
func (m *merger) entry(tid uint32, t, lower int64, addr uint64) int64 {
	th := m.threads[tid]
	entry := lower
	th.overlapping(lower, t, func(j *interval) {
		if j.wait == waitCondition || j.wait == waitLock && j.lockAddr == addr {
			entry = max(entry, min(j.end, t))
		}
	})
	return entry
}

// heldBy is the frame that joins a lock site to its holder's activity.
func (m *merger) heldBy(holder uint32) *profile.Location {
	name := "thread"
	if th := m.threads[holder]; th != nil && th.name != "" {
		name = pprofbuild.ThreadPool(th.name)
	}
	return m.b.Synthetic("[held by " + name + "]")
}

// holderActivity charges [a, b) to thread tid, which released the lock at
// addr (0: unknown) at b by waking the waiter, walking tid's activity
// backwards from b:
//
//   - blocked in an off-CPU interval: its kernel frames under its Java
//     context (a sleep or an fsync inside the lock: the cause);
//   - waiting for a lock of its own: before it got that lock its holder
//     decides, followed to the thread that woke tid; for the same lock
//     (tid queued behind the holder like the waiter) that thread held the
//     whole rest of [a, b);
//   - waiting for work (a condition: an idle handler polling its queue):
//     tid entered the lock only after, so the rest of [a, b) had a holder
//     the wakeups do not name (a thread that took the lock without
//     queueing), charged to "[holder not identified]";
//   - between intervals: running, its nearest sample.
//
// Each segment's stack ends with the "[held by POOL]" frame.
func (m *merger) holderActivity(a, b int64, tid uint32, addr uint64, depth int, chain []uint32) []segment {
	th := m.threads[tid]
	held := m.heldBy(tid)
	var js []*interval
	th.overlapping(a, b, func(j *interval) { js = append(js, j) })
	chain = append(chain, tid)
	var out []segment
	add := func(s, e int64, locs ...*profile.Location) {
		if e > s {
			out = append(out, segment{start: s, end: e, locs: append(locs, held)})
		}
	}
	pos := b
	for i := len(js) - 1; i >= 0; i-- {
		j := js[i]
		s, e := max(a, j.start), min(b, j.end)
		add(e, pos, m.running(th, e, pos)...)
		pos = s
		switch {
		case j.wait == waitCondition:
			out = append(out, segment{start: a, end: e, unidentified: true,
				locs: []*profile.Location{m.b.Synthetic("[holder not identified]")}})
			return out
		case j.wait == waitLock && j.lockAddr != 0 && j.lockAddr != addr && depth < MaxBlameDepth && len(m.releases[j.lockAddr]) > 0:
			// tid held our lock while it waited for another one: charge
			// that lock's holders, below tid's own lock site.
			for _, sub := range m.tenures(s, e, j.lockAddr, depth+1, chain) {
				if !sub.unidentified {
					sub.locs = append(append(sub.locs, j.lockLeaf), j.lockSite...)
					sub.locs = append(sub.locs, held)
				}
				m.stats.Blame.Chained++
				out = append(out, sub)
			}
		case j.wait == waitLock && (j.lockAddr == 0 || j.lockAddr == addr) && j.acquired && j.waker != 0 &&
			depth < MaxBlameDepth && !slices.Contains(chain, j.waker) && m.threads[j.waker] != nil:
			// A wait of unknown lock: follow the thread that handed it over.
			same := addr != 0 && j.lockAddr == addr
			from := s
			if same {
				from = a
			}
			for _, sub := range m.holderActivity(from, e, j.waker, j.lockAddr, depth+1, chain) {
				if !sub.unidentified && !same {
					sub.locs = append(append(sub.locs, j.lockLeaf), j.lockSite...)
					sub.locs = append(sub.locs, held)
				}
				m.stats.Blame.Chained++
				out = append(out, sub)
			}
			if same {
				return out
			}
		default:
			ctx := j.ctx
			if len(ctx) == 0 {
				ctx = []*profile.Location{m.b.Synthetic("[no Java context]")}
			}
			add(s, e, append(slices.Clone(j.kernel), ctx...)...)
		}
	}
	add(a, pos, m.running(th, a, pos)...)
	return out
}

// running is the stack of a thread on the CPU in [a, b): a sample taken
// then, else the nearest within the context bound.
func (m *merger) running(th *thread, a, b int64) []*profile.Location {
	if ts, ok := nearest(th.samples, a, b, m.bound); ok {
		return append([]*profile.Location{m.b.Synthetic("[on CPU]")}, ts.locs...)
	}
	return []*profile.Location{m.b.Synthetic("[on CPU, not sampled]")}
}

func sortSearch(n int, f func(int) bool) int { return sort.Search(n, f) }
