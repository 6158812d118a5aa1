package merge

import (
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/pprofbuild"
	"github.com/lockscope/lockscope/internal/verdict"
)

// The critical path: every stretch a thread of the target spent off the
// CPU, other than waiting for work, is charged to what held it up, for the
// verdict (internal/verdict) to rank. A stretch is split first by what the
// thread itself shows:
//
//   - inside a stop-the-world pause (pauses.go): the pause;
//   - after its wakeup, or preempted: waiting for a CPU;
//   - asleep in the filesystem, a socket's send buffer, memory reclaim:
//     that wait, with the thread's Java context;
//   - asleep in a futex (a lock, a park, a condition, a future, a queue)
//     and woken by another thread of the target: what that thread did
//     meanwhile, walked backwards from the wakeup, the same way, up to
//     maxPathDepth threads deep (offwaketime and critical-path analysis do
//     this with kernel stacks; here with Java frames too). A waker that was
//     waiting for work itself meanwhile leaves the stretch unattributed: the
//     thread waited for something the wakeups do not show.
//
// The charges are thread-nanoseconds (ten request threads waiting for one
// fsync charge it ten times: each was held up), kept per bin of time so
// that the verdict can test whether a cause lines up with the slow windows.

// maxPathDepth bounds the threads followed from a waiter: a lock convoy
// passes through as many holders as queued before it.
const maxPathDepth = 8

// ledgerBin is the ledger's bin width.
const ledgerBin = int64(10e6) // 10 ms

type walker struct {
	m      *merger
	l      *verdict.Ledger
	pauses []pause
	// starved is, per pause, the share its workers waited for a CPU.
	starved []float64
	byKey   map[verdict.Cause]*verdict.Evidence
	// seenPause marks the pauses (by index) already counted in their GC
	// evidence, once each, when they touch the slow windows.
	seenPause map[int]bool
	end       int64
}

// ledger walks the critical paths of every thread's off-CPU intervals.
func (m *merger) ledger(tids []uint32) *verdict.Ledger {
	w := &walker{m: m, l: &verdict.Ledger{Bin: ledgerBin}, pauses: m.pauseLog.pauses(),
		byKey: map[verdict.Cause]*verdict.Evidence{}, seenPause: map[int]bool{}}
	w.l.Pauses = len(w.pauses)
	var workers []*thread
	for _, th := range m.threads {
		if pauseWorker(th.name) {
			workers = append(workers, th)
		}
	}
	for _, p := range w.pauses {
		w.starved = append(w.starved, starved(p, workers))
	}
	start, end := m.opt.Clock.Start.Monotonic, m.opt.Clock.End.Monotonic
	if m.opt.Clock.Validate() != nil || end <= start {
		start, end = 0, 0
		for _, th := range m.threads {
			for _, iv := range th.ivs {
				if start == 0 || iv.start < start {
					start = iv.start
				}
				end = max(end, iv.end)
			}
		}
	}
	if end <= start {
		return w.l
	}
	w.l.OffCPU = m.stats.OffCPUIntervals > 0
	w.l.Start, w.end = start, end
	w.l.Bins = int((end-start+ledgerBin-1)/ledgerBin) + 1
	w.l.Slow = make([]float32, w.l.Bins)
	if ws := m.opt.Windows; ws != nil {
		for _, win := range ws.Windows {
			w.spread(w.l.Slow, win.Start, win.End, 1/float32(ledgerBin))
		}
	}
	for _, tid := range tids {
		th := m.threads[tid]
		if jvmInternal(th.name) {
			continue
		}
		waiter := pprofbuild.ThreadPool(th.name)
		if !m.opt.explains(th.name) {
			continue
		}
		for _, iv := range th.ivs {
			if iv.end <= start || iv.start >= end {
				continue
			}
			if !iv.runnable && idleWait(iv) {
				// Waiting for work, until the work came: from its wakeup
				// on, the thread had work and waited for a CPU (a
				// selector woken by a request, a handler by its queue).
				s, e := max(iv.start, start), min(iv.end, end)
				if iv.wake > s && iv.wake < e {
					w.l.Idle += m.slowPart(s, iv.wake)
					w.charge(verdict.Cause{Kind: verdict.CPU}, waiter, iv.wake, e)
				} else {
					w.l.Idle += m.slowPart(s, e)
				}
				continue
			}
			w.segment(tid, iv, max(iv.start, start), min(iv.end, end), 0, nil, "", waiter)
		}
	}
	for _, e := range w.byKey {
		w.l.Evidence = append(w.l.Evidence, e)
	}
	slices.SortFunc(w.l.Evidence, func(a, b *verdict.Evidence) int {
		if c := cmpInt(b.Slow, a.Slow); c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind)+a.Thread+a.Java+a.Kernel+a.Via, string(b.Kind)+b.Thread+b.Java+b.Kernel+b.Via)
	})
	return w.l
}

// spread adds v per ns of [s, e) to the bins of series.
func (w *walker) spread(series []float32, s, e int64, v float32) {
	s, e = max(s, w.l.Start), min(e, w.end)
	for s < e {
		i := (s - w.l.Start) / ledgerBin
		be := min(e, w.l.Start+(i+1)*ledgerBin)
		series[i] += v * float32(be-s)
		s = be
	}
}

// charge books [s, e) of waiter's waiting to cause c.
func (w *walker) charge(c verdict.Cause, waiter string, s, e int64) {
	if e <= s {
		return
	}
	ev := w.byKey[c]
	if ev == nil {
		ev = &verdict.Evidence{Cause: c, Series: make([]float32, w.l.Bins), Waiters: map[string]int64{}}
		w.byKey[c] = ev
	}
	slow := w.m.slowPart(s, e)
	ev.Slow += slow
	ev.Base += e - s - slow
	if slow > 0 && waiter != "" {
		ev.Waiters[waiter] += slow
	}
	w.spread(ev.Series, s, e, 1)
}

// segment charges [a, b) of interval iv of thread tid. chain holds the
// threads already on the path; via says how the first waiter reached it.
func (w *walker) segment(tid uint32, iv *interval, a, b int64, depth int, chain []uint32, via, waiter string) {
	w.aroundPauses(a, b, waiter, func(s, e int64) { w.rest(tid, iv, s, e, depth, chain, via, waiter) })
}

// aroundPauses charges the parts of [a, b) inside stop-the-world pauses to
// them (nothing ran then, whatever held the thread otherwise) and calls
// outside for the parts between.
func (w *walker) aroundPauses(a, b int64, waiter string, outside func(s, e int64)) {
	i, _ := slices.BinarySearchFunc(w.pauses, a, func(p pause, t int64) int { return cmpInt(p.end, t+1) })
	for ; i < len(w.pauses) && w.pauses[i].start < b && a < b; i++ {
		p := w.pauses[i]
		if p.end <= a {
			continue
		}
		if s := max(a, p.start); s > a {
			outside(a, s)
		}
		c := verdict.Cause{Kind: verdict.GC, Java: pauseName(p)}
		// The part of the pause its workers spent waiting for a CPU
		// is the CPU's: a collection stretched by saturation.
		s, e := max(a, p.start), min(b, p.end)
		split := s + int64(float64(e-s)*(1-w.starved[i]))
		w.charge(c, waiter, s, split)
		w.charge(verdict.Cause{Kind: verdict.CPU}, waiter, split, e)
		if ev := w.byKey[c]; ev != nil && !w.seenPause[i] && w.m.slowPart(p.start, p.end) > 0 {
			w.seenPause[i] = true
			ev.Pauses++
			if d := p.end - p.start; int64(ev.Worst) < d {
				ev.Worst, ev.What = time.Duration(d), p.what
			}
		}
		a = min(b, p.end)
	}
	if b > a {
		outside(a, b)
	}
}

// rest charges [a, b) of iv outside any pause.
func (w *walker) rest(tid uint32, iv *interval, a, b int64, depth int, chain []uint32, via, waiter string) {
	if b <= a {
		return
	}
	th := w.m.threads[tid]
	// Waiting for a CPU: the whole of a preemption, the rest of a sleep
	// after its wakeup.
	runFrom := b
	switch {
	case iv.runnable:
		runFrom = a
	case iv.wake > iv.start && iv.wake < b:
		runFrom = max(a, iv.wake)
	}
	w.charge(verdict.Cause{Kind: verdict.CPU}, waiter, runFrom, b)
	b = runFrom
	if b <= a {
		return
	}
	kind, kernel, syscall := kernelWait(iv.kernel)
	own := func(k verdict.Kind) {
		c := verdict.Cause{Kind: k, Thread: pprofbuild.ThreadPool(th.name), Kernel: kernel, Syscall: syscall, Via: via}
		c.Java, c.App = javaFrames(iv.ctx)
		who := waiter
		if depth == 0 {
			// The thread's own wait: it counts, but the waiters are
			// those it held up.
			who = ""
		}
		w.charge(c, who, a, b)
	}
	switch kind {
	case verdict.Filesystem, verdict.Socket, verdict.Reclaim:
		own(kind)
		return
	case idleKind:
		// The thread followed was waiting for input itself: the waiter
		// waited for something this path does not show.
		w.l.Unattributed += w.m.slowPart(a, b)
		return
	}
	if depth == 0 {
		via = mechanism(iv)
	}
	wk := iv.waker
	usable := func(wk uint32) bool {
		return wk != 0 && wk != tid && depth < maxPathDepth && !slices.Contains(chain, wk) && w.m.threads[wk] != nil
	}
	if !usable(wk) && iv.wait == waitLock && iv.lockAddr != 0 {
		// A lock waiter woken by a timer (HotSpot's monitors re-check on
		// one) names no holder; the lock's next hand-off does.
		rs := w.m.releases[iv.lockAddr]
		if i := sortSearch(len(rs), func(i int) bool { return rs[i].t >= iv.end-int64(2e6) }); i < len(rs) && rs[i].t <= iv.end+int64(50e6) {
			wk = rs[i].holder
		}
	}
	if usable(wk) && len(w.pauses) == 0 && strings.HasPrefix(w.m.threads[wk].name, "VM Thread") {
		// Woken by the VM thread, in a recording without pause events
		// (async-profiler records GC and safepoint events only with
		// jfrsync): the end of a safepoint. With the JDK's events the
		// pauses are known, and the VM thread's other wakeups
		// (handshakes, JFR's own periodic work) are not pauses.
		w.charge(verdict.Cause{Kind: verdict.GC, Java: "safepoint"}, waiter, a, b)
		return
	}
	if usable(wk) && jvmInternal(w.m.threads[wk].name) {
		// Woken by the JVM's own threads (the attach listener starting
		// the profiler, the VM thread after a safepoint): pauses are
		// charged above, the rest is no cause of the target's.
		w.l.Unattributed += w.m.slowPart(a, b)
		return
	}
	if usable(wk) && !isSleep(iv.ctx) {
		w.follow(wk, a, b, depth+1, append(chain, tid), via, waiter)
		return
	}
	switch {
	case len(iv.ctx) == 0 && !iv.runnable && (kind == verdict.Other || kind == ""):
		// A futex (or another kernel wait) with no Java context and no
		// waker to follow: nothing says what it waited for.
		w.l.Unattributed += w.m.slowPart(a, b)
	case depth == 0 && iv.wait == waitLock:
		// The holder is not known: the lock is.
		c := verdict.Cause{Kind: verdict.Lock, Thread: "", Via: via}
		c.Java, c.App = javaFrames(iv.ctx)
		w.charge(c, waiter, a, b)
	case depth > 0 && strings.HasPrefix(via, "lock"):
		own(verdict.Lock)
	case depth > 0:
		own(verdict.Handoff)
	case isSleep(iv.ctx) || wk == 0:
		own(verdict.Sleep)
	default:
		own(verdict.Other)
	}
}

// follow charges [a, b) to what thread tid did then, walking back from b.
func (w *walker) follow(tid uint32, a, b int64, depth int, chain []uint32, via, waiter string) {
	th := w.m.threads[tid]
	var js []*interval
	th.overlapping(a, b, func(j *interval) { js = append(js, j) })
	kind := verdict.Handoff
	if strings.HasPrefix(via, "lock") {
		kind = verdict.Lock
	}
	pos := b
	for i := len(js) - 1; i >= 0; i-- {
		j := js[i]
		s, e := max(a, j.start), min(b, j.end)
		w.onCPU(tid, th, kind, e, pos, depth, via, waiter)
		pos = s
		if !j.runnable && idleWait(j) {
			// The thread followed was waiting for work itself; once woken
			// (the work came), it waited for a CPU.
			if j.wake > s && j.wake < e {
				w.charge(verdict.Cause{Kind: verdict.CPU}, waiter, j.wake, e)
				e = j.wake
			}
			w.l.Unattributed += w.m.slowPart(a, e)
			return
		}
		w.segment(tid, j, s, e, depth, chain, via, waiter)
	}
	w.onCPU(tid, th, kind, a, pos, depth, via, waiter)
}

// onCPU charges [a, b), when thread tid on the path was running, to its
// work (split around pauses, in which it did not run).
func (w *walker) onCPU(tid uint32, th *thread, kind verdict.Kind, a, b int64, depth int, via, waiter string) {
	if b <= a {
		return
	}
	c := verdict.Cause{Kind: kind, Thread: pprofbuild.ThreadPool(th.name), Kernel: "on CPU", Via: via}
	if ts, ok := nearest(th.samples, a, b, w.m.bound); ok {
		c.Java, c.App = javaFrames(ts.locs)
	}
	w.aroundPauses(a, b, waiter, func(s, e int64) { w.charge(c, waiter, s, e) })
}

// pauseWorker: a thread that does a stop-the-world pause's work: the GC
// workers, and the VM thread (a serial collection, a safepoint's
// operation).
func pauseWorker(name string) bool {
	return strings.HasPrefix(name, "GC Thread") || strings.HasPrefix(name, "VM Thread")
}

// starved is the share of their time in pause p, when not asleep, that its
// workers spent waiting for a CPU (preempted, or woken and not yet
// running): a pause stretched because other processes held the CPUs.
func starved(p pause, workers []*thread) float64 {
	var wait, active int64
	for _, th := range workers {
		var asleep int64
		th.overlapping(p.start, p.end, func(iv *interval) {
			s, e := max(iv.start, p.start), min(iv.end, p.end)
			switch {
			case iv.runnable:
				wait += e - s
			case iv.wake > 0 && iv.wake < e:
				from := max(s, iv.wake)
				asleep += from - s
				wait += e - from
			default:
				asleep += e - s
			}
		})
		active += p.end - p.start - asleep
	}
	if active <= 0 {
		return 0
	}
	return min(1, float64(wait)/float64(active))
}

func pauseName(p pause) string {
	if p.gc {
		return "GC pause"
	}
	return "safepoint"
}

// idleKind marks a kernel wait for input (epoll, accept, a socket read).
const idleKind verdict.Kind = "idle"

// kernelWait classifies an off-CPU interval by its kernel stack (innermost
// first): what it waited in, the innermost telling kernel function and the
// system call.
func kernelWait(locs []*profile.Location) (kind verdict.Kind, leaf, syscall string) {
	for _, l := range locs {
		fn := l.Line[0].Function
		if pprofbuild.KindOf(fn) != pprofbuild.KindKernel {
			continue
		}
		n := strings.TrimSuffix(fn.Name, "_[k]")
		if leaf == "" && !schedFrame(n) {
			leaf = n
		}
		if syscall == "" {
			for _, p := range []string{"__x64_sys_", "__arm64_sys_", "__se_sys_", "__do_sys_"} {
				if strings.HasPrefix(n, p) {
					syscall = strings.TrimPrefix(n, p)
				}
			}
		}
		switch {
		case kind != "":
		case strings.HasPrefix(n, "shrink_") || strings.Contains(n, "reclaim") || strings.HasPrefix(n, "compact_") ||
			n == "try_to_free_pages" || n == "__alloc_pages_slowpath" || n == "throttle_direct_reclaim":
			kind = verdict.Reclaim
		case strings.HasPrefix(n, "jbd2_") || strings.HasPrefix(n, "ext4_") || strings.HasPrefix(n, "xfs_") ||
			strings.HasPrefix(n, "btrfs_") || strings.HasPrefix(n, "blk_") || strings.HasPrefix(n, "folio_wait") ||
			strings.HasPrefix(n, "wait_on_page") || strings.HasPrefix(n, "__wait_on_buffer") || n == "balance_dirty_pages" ||
			strings.HasPrefix(n, "filemap_") || strings.HasPrefix(n, "file_write_and_wait") || n == "do_fsync" ||
			n == "submit_bio_wait" || n == "io_schedule" || strings.HasPrefix(n, "iomap_"):
			kind = verdict.Filesystem
		case n == "sk_stream_wait_memory":
			kind = verdict.Socket
		case n == "ep_poll" || n == "do_epoll_wait" || n == "inet_csk_accept" || n == "sk_wait_data" ||
			n == "do_select" || n == "do_sys_poll" || n == "unix_stream_read_generic" || n == "pipe_read" ||
			strings.HasPrefix(n, "tcp_recvmsg"):
			kind = idleKind
		case strings.HasPrefix(n, "futex_") || strings.HasPrefix(n, "__futex"):
			kind = verdict.Other // resolved through the waker
		}
	}
	return kind, leaf, syscall
}

func schedFrame(n string) bool {
	switch n {
	case "schedule", "__schedule", "schedule_timeout", "io_schedule", "schedule_hrtimeout_range",
		"schedule_hrtimeout_range_clock", "schedule_preempt_disabled", "preempt_schedule", "preempt_schedule_common",
		"__cond_resched", "finish_task_switch", "finish_task_switch.isra.0":
		return true
	}
	return strings.HasPrefix(n, "finish_task_switch")
}

// javaFrames picks from a Java context (innermost first) the telling frame
// (the innermost one that is not the JDK's waiting machinery) and the
// innermost frame outside the JDK.
func javaFrames(locs []*profile.Location) (telling, app string) {
	for _, l := range locs {
		fn := l.Line[0].Function
		if pprofbuild.KindOf(fn) != pprofbuild.KindJava {
			continue
		}
		n := fn.Name
		if telling == "" && !machinery(n) {
			telling = n
		}
		if app == "" && !jdkFrame(n) {
			app = n
		}
		if telling != "" && app != "" {
			break
		}
	}
	if app == telling {
		app = ""
	}
	return telling, app
}

// machinery: frames every wait of a kind shares, which name no cause.
func machinery(n string) bool {
	for _, p := range []string{"jdk.internal.misc.Unsafe.", "sun.misc.Unsafe.", "java.util.concurrent.locks.LockSupport.",
		"java.util.concurrent.locks.AbstractQueuedSynchronizer", "java.util.concurrent.locks.AbstractQueuedLongSynchronizer",
		"java.lang.Object.wait", "sun.nio.ch.FileDispatcherImpl.", "sun.nio.ch.IOUtil.", "sun.nio.ch.NativeThread",
		"java.lang.Thread.sleep0", "jdk.internal.misc.Blocker", "java.util.concurrent.locks.ReentrantLock",
		"java.util.concurrent.locks.ReentrantReadWriteLock"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

func jdkFrame(n string) bool {
	for _, p := range []string{"java.", "javax.", "jdk.", "sun.", "com.sun.", "jakarta."} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// isSleep: the context is a sleep (Thread.sleep, a timed park without a
// blocker).
func isSleep(locs []*profile.Location) bool {
	for i, l := range locs {
		if i > 8 {
			break
		}
		if sleepCall(l.Line[0].Function.Name) {
			return true
		}
	}
	return false
}

// mechanism names how a waiter waited: for a lock (by its class), or
// through a hand-off, named by the JDK class it waited in.
func mechanism(iv *interval) string {
	if iv.wait == waitLock {
		m := "lock"
		if iv.lockLeaf != nil {
			n := iv.lockLeaf.Line[0].Function.Name
			m = strings.TrimSuffix(strings.TrimPrefix(n, "["), "]")
		}
		site := iv.lockSite
		if len(site) == 0 {
			site = iv.ctx
		}
		if j, _ := javaFrames(site); j != "" {
			m += " in " + j
		}
		return m
	}
	for _, l := range iv.ctx {
		n := l.Line[0].Function.Name
		if pprofbuild.KindOf(l.Line[0].Function) != pprofbuild.KindJava || machinery(n) {
			continue
		}
		switch {
		case strings.HasPrefix(n, "java.util.concurrent.locks.ReentrantLock") ||
			strings.HasPrefix(n, "java.util.concurrent.locks.ReentrantReadWriteLock"):
			return "lock " + className(n)
		case strings.HasPrefix(n, "java.util.concurrent.") || n == "java.lang.Object.wait" ||
			strings.HasPrefix(n, "java.lang.Thread.join"):
			return className(n)
		}
		break
	}
	if iv.wait == waitCondition {
		return "a condition"
	}
	return "a futex"
}

// className cuts the method off "pkg.Class.method" and the package off
// the class.
func className(n string) string {
	if i := strings.LastIndexByte(n, '.'); i > 0 {
		n = n[:i]
	}
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	if i := strings.IndexByte(n, '$'); i > 0 {
		n = n[:i]
	}
	return n
}
