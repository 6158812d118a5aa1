package merge

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/pprofbuild"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Sample types of every merged profile, in this order; all nanoseconds.
const (
	TypeWall   = "wall"
	TypeLock   = "lock"
	TypeOffCPU = "offcpu"
	TypeCPU    = "cpu"
	// TypeBlame is lock waiting time charged to what the lock's holder
	// did meanwhile (see blame.go).
	TypeBlame = "blame"
)

const (
	iWall = iota
	iLock
	iOffCPU
	iCPU
	iBlame
	nTypes
)

// Window label values.
const (
	Slow     = "slow"
	Baseline = "baseline"
)

// Options tune a merge.
type Options struct {
	// Windows are the SLO-breach windows in CLOCK_MONOTONIC; nil or
	// empty puts everything in the baseline.
	Windows *latency.WindowSet
	// Clock converts the wall-clock times of JDK Flight Recorder chunks
	// to CLOCK_MONOTONIC (async-profiler's are monotonic already).
	Clock clock.Mapping
	// ContextBound is how far from an off-CPU interval the nearest sample
	// of its thread may be to lend it its Java context (default: twice the
	// wall interval).
	ContextBound time.Duration
	// Target names the profiled process (bundle.Target.Name); pprof shows
	// it as the profile's main binary, in its UI's title.
	Target string
	// Only are the threads whose waiting the verdict's ledger explains,
	// as patterns of their names (path.Match: "ReplicaFetcherThread-*-0");
	// empty: every thread of the target but the JVM's own. A follower in
	// a cluster capture is asked what its fetchers from the leader waited
	// for.
	Only []string
}

// explains reports whether the ledger explains the waiting of the thread
// named name.
func (o *Options) explains(name string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, p := range o.Only {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Validate reports options that cannot merge.
func (o *Options) Validate() error {
	if o.Windows != nil && len(o.Windows.Windows) > 0 && o.Windows.Clock != latency.Monotonic {
		return fmt.Errorf("merge: windows are in %s time, want monotonic (convert them with the bundle's clock)", o.Windows.Clock)
	}
	if o.ContextBound < 0 {
		return fmt.Errorf("merge: negative context bound %v", o.ContextBound)
	}
	for _, p := range o.Only {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("merge: thread name pattern %q: %w", p, err)
		}
	}
	return nil
}

// Input is what to merge.
type Input struct {
	// Recording is the path of a JFR recording; empty when none was made.
	Recording string
	// OffCPU streams the symbolized off-CPU intervals (a bundle's
	// offcpu.jsonl); nil when none were collected.
	OffCPU io.Reader
}

// Stats counts what the merge saw, and how often each attribution fallback
// was used, so that the user can judge the result.
type Stats struct {
	Chunks          int   `json:"chunks"`
	WallSamples     int64 `json:"wall_samples"`
	CPUSamples      int64 `json:"cpu_samples"`
	LockEvents      int64 `json:"lock_events"`
	ContextEvents   int64 `json:"context_events"`
	OffCPUIntervals int64 `json:"offcpu_intervals"`
	// WallWithKernel counts wall samples that fell inside an off-CPU
	// interval of their thread and got its kernel frames.
	WallWithKernel int64 `json:"wall_with_kernel"`
	// Java context of off-CPU intervals, by how it was found.
	ContextWall    int64 `json:"context_wall_sample"`
	ContextOverlap int64 `json:"context_overlapping_event"`
	ContextNearest int64 `json:"context_nearest_sample"`
	ContextNone    int64 `json:"context_none"`
	// NoThread counts JFR events without an OS thread id; NoClock JDK
	// events skipped because no clock mapping was given.
	NoThread int64 `json:"no_thread"`
	NoClock  int64 `json:"no_clock"`
	// JDKChunks counts chunks of the JDK Flight Recorder, whose "wall"
	// samples are only its execution and native-method samples: threads
	// blocked in Java (sleeping, waiting for a monitor) are never sampled.
	JDKChunks int `json:"jdk_chunks"`
	// SlowWindows and SlowTime describe the windows used.
	SlowWindows int           `json:"slow_windows"`
	SlowTime    time.Duration `json:"slow_time_ns"`
	Blame       BlameStats    `json:"blame"`
}

// Result is the merged profiles: All carries every sample with a "window"
// label (slow or baseline); Slow and Baseline hold the two halves.
type Result struct {
	All, Slow, Baseline *profile.Profile
	Stats               Stats
	// Ledger is the waiting on the threads' critical paths, charged to its
	// causes (critical.go), for the verdict.
	Ledger *verdict.Ledger
	// Threads are the threads' names by OS thread id, as the JVM and the
	// collector knew them (Java names are longer than the kernel's 15
	// characters).
	Threads map[uint32]string
}

// Merge joins a recording and off-CPU intervals into profiles split by the
// SLO-breach windows.
func Merge(in Input, opt Options) (*Result, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	m := &merger{opt: opt, threads: map[uint32]*thread{}}
	m.b = pprofbuild.New([2]string{TypeWall, "nanoseconds"}, [2]string{TypeLock, "nanoseconds"},
		[2]string{TypeOffCPU, "nanoseconds"}, [2]string{TypeCPU, "nanoseconds"}, [2]string{TypeBlame, "nanoseconds"})
	m.b.SetDefaultSampleType(TypeWall)
	if opt.Windows != nil {
		m.stats.SlowWindows = len(opt.Windows.Windows)
		m.stats.SlowTime = opt.Windows.Total()
	}
	if in.OffCPU != nil {
		if err := m.readOffCPU(in.OffCPU); err != nil {
			return nil, err
		}
	}
	if in.Recording != "" {
		if err := m.readRecording(in.Recording); err != nil {
			return nil, err
		}
	}
	m.emitOffCPU()
	all, err := m.b.Profile()
	if err != nil {
		return nil, err
	}
	res := &Result{All: all, Stats: m.stats, Threads: make(map[uint32]string, len(m.threads)), Ledger: m.led}
	for tid, th := range m.threads {
		if th.name != "" {
			res.Threads[tid] = th.name
		}
	}
	res.Slow, err = byWindow(all, Slow)
	if err != nil {
		return nil, err
	}
	res.Baseline, err = byWindow(all, Baseline)
	if err != nil {
		return nil, err
	}
	setTimes(res, opt)
	return res, nil
}

// setTimes gives each profile the time it covers, so that profiles of
// unequal spans compare per second: the capture's span for All, the slow
// windows' time inside it for Slow, the rest for Baseline (3 s of windows
// against 19 s of baseline, say). A diff that ignores this sees nearly
// everything shrink in the slow windows. Without the capture's clock pairs
// (or a single pair) the spans are unknown and left at zero.
func setTimes(res *Result, opt Options) {
	if opt.Target != "" {
		for _, p := range []*profile.Profile{res.All, res.Slow, res.Baseline} {
			// The first mapping is the main binary by pprof's convention;
			// no location refers to it (frames are symbolized already).
			p.Mapping = append([]*profile.Mapping{{File: opt.Target, HasFunctions: true}}, p.Mapping...)
			for i, m := range p.Mapping {
				m.ID = uint64(i + 1)
			}
		}
	}
	start, end := opt.Clock.Start.Monotonic, opt.Clock.End.Monotonic
	if opt.Clock.Validate() != nil || end <= start {
		return
	}
	var slow int64
	if opt.Windows != nil {
		slow = int64(opt.Windows.Overlap(start, end))
	}
	for p, ns := range map[*profile.Profile]int64{res.All: end - start, res.Slow: slow, res.Baseline: end - start - slow} {
		p.TimeNanos = opt.Clock.Start.Realtime
		p.DurationNanos = ns
	}
}

// BlameProfile cuts the blame sample type out of a merged profile: the
// waiting time of lock waiters charged to their holders' activity
// (blame.pb.gz), as a profile of that one type.
func BlameProfile(p *profile.Profile) (*profile.Profile, error) {
	i := typeIndex(p, TypeBlame)
	if i < 0 {
		return nil, fmt.Errorf("profile has no %s sample type", TypeBlame)
	}
	b := p.Copy()
	b.Sample = slices.DeleteFunc(b.Sample, func(s *profile.Sample) bool { return s.Value[i] == 0 })
	for _, s := range b.Sample {
		s.Value = []int64{s.Value[i]}
	}
	b.SampleType = []*profile.ValueType{b.SampleType[i]}
	b.PeriodType = b.SampleType[0]
	b.DefaultSampleType = TypeBlame
	b = b.Compact()
	if err := b.CheckValid(); err != nil {
		return nil, fmt.Errorf("building blame profile: %w", err)
	}
	return b, nil
}

// byWindow copies the samples of one window label.
func byWindow(all *profile.Profile, w string) (*profile.Profile, error) {
	p := all.Copy()
	p.Sample = slices.DeleteFunc(p.Sample, func(s *profile.Sample) bool { return s.Label["window"][0] != w })
	p = p.Compact()
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("building %s profile: %w", w, err)
	}
	return p, nil
}

// thread is what the merge knows of one OS thread.
type thread struct {
	name string
	ivs  []*interval // off-CPU intervals, sorted by start
	// samples of the thread (time, Java stack), for the nearest-sample
	// fallback; kept only for threads with off-CPU intervals.
	samples []timedStack
}

type timedStack struct {
	t    int64
	locs []*profile.Location
}

type ctxKind uint8

const (
	ctxNone ctxKind = iota
	ctxNearest
	ctxOverlap
	ctxWall
)

type interval struct {
	start, end int64
	// wake is when the thread was woken (0: not seen): from then to end it
	// was runnable, waiting for a CPU. runnable: it never slept (it was
	// preempted), so all of it was a wait for a CPU.
	wake     int64
	runnable bool
	state    string
	kernel   []*profile.Location
	ctx      []*profile.Location
	ctxKind  ctxKind
	// waker is the thread that woke this one at end (sched_waking).
	waker uint32
	// wait says what the thread waited for, when JFR tells: a lock (then
	// its waker released it) or a condition (a notify, not a hand-off).
	wait waitKind
	// lockSite and lockLeaf are the waiter's stack and "[lock CLASS]"
	// frame of a lock wait; prevOwner is the JDK's previousOwner (0: none).
	lockSite  []*profile.Location
	lockLeaf  *profile.Location
	prevOwner uint32
	// lockAddr is the lock's address from JFR (0: unknown), which tells
	// whether two waits are for the same lock.
	lockAddr uint64
	// acquired: the wait ended with the lock, so its waker released it.
	// (A waiter also wakes from timed re-parks: HotSpot's monitor and
	// timed lock waits re-check on a timer, and the "waker" of a timer
	// wakeup is whatever ran on that CPU.)
	acquired bool
}

// waitKind is what an off-CPU interval waited for.
type waitKind uint8

const (
	waitUnknown waitKind = iota
	waitCondition
	waitLock
)

type merger struct {
	opt     Options
	b       *pprofbuild.Builder
	threads map[uint32]*thread
	stats   Stats
	locs    []*profile.Location // reused stack buffer
	maxWall int64               // the largest wall interval seen
	// sampling settings in force, carried from chunk to chunk
	sampling jfr.Sampling
	bound    int64 // the context bound in force (Options.ContextBound or its default)
	// handoffs are lock hand-offs the JDK recorded (a monitor's previous
	// owner when a waiter got it), by lock address.
	handoffs map[uint64][]release
	// releases are all hand-offs by lock address, sorted (blame.go).
	releases map[uint64][]release
	// pauseLog gathers the stop-the-world pauses (pauses.go).
	pauseLog pauseLog
	led      *verdict.Ledger
}

func (m *merger) readOffCPU(r io.Reader) error {
	kernel := map[string][]*profile.Location{}
	var key strings.Builder
	err := bundle.ReadOffCPU(r, func(iv *bundle.Interval) error {
		m.stats.OffCPUIntervals++
		th := m.thread(iv.TID, iv.Thread)
		// Intervals with the same kernel stack share one location slice.
		key.Reset()
		for _, f := range iv.Kernel {
			key.WriteString(f.Name)
			key.WriteByte(',')
		}
		locs, ok := kernel[key.String()]
		if !ok {
			for _, f := range iv.Kernel {
				switch f.Kind {
				case bundle.KindKernel:
					locs = append(locs, m.b.Kernel(f.Name))
				default:
					locs = append(locs, m.b.Native(f.Name, f.Module))
				}
			}
			if len(iv.Kernel) == 0 {
				locs = []*profile.Location{m.b.Synthetic("[no kernel stack]")}
			}
			kernel[key.String()] = locs
		}
		th.ivs = append(th.ivs, &interval{start: int64(iv.Start), end: int64(iv.End), wake: int64(iv.Wakeup),
			runnable: iv.State == offcpu.Preempted, state: iv.State.String(), kernel: locs, waker: iv.WakerTID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	for _, th := range m.threads {
		sort.Slice(th.ivs, func(i, j int) bool { return th.ivs[i].start < th.ivs[j].start })
	}
	return nil
}

func (m *merger) thread(tid uint32, name string) *thread {
	th := m.threads[tid]
	if th == nil {
		th = &thread{}
		m.threads[tid] = th
	}
	// The kernel's name of a thread (comm) is cut at 15 bytes; the JVM's
	// is whole, so a longer name that extends the one known replaces it.
	if th.name == "" || len(name) > len(th.name) && strings.HasPrefix(name, th.name) {
		th.name = name
	}
	return th
}

// containing returns the interval of th that contains t, or nil.
func (th *thread) containing(t int64) *interval {
	i := sort.Search(len(th.ivs), func(i int) bool { return th.ivs[i].start > t })
	if i > 0 && t < th.ivs[i-1].end {
		return th.ivs[i-1]
	}
	return nil
}

// overlapping calls fn for each interval of th that overlaps [s, e).
func (th *thread) overlapping(s, e int64, fn func(*interval)) {
	// Intervals of one thread do not overlap each other, so ends are
	// sorted too.
	i := sort.Search(len(th.ivs), func(i int) bool { return th.ivs[i].end > s })
	for ; i < len(th.ivs) && th.ivs[i].start < e; i++ {
		fn(th.ivs[i])
	}
}

func (m *merger) slow(t int64) bool {
	return m.opt.Windows != nil && m.opt.Windows.Contains(t)
}

func (m *merger) slowPart(s, e int64) int64 {
	if m.opt.Windows == nil || e <= s {
		return 0
	}
	return int64(m.opt.Windows.Overlap(s, e))
}

func (m *merger) readRecording(path string) error {
	r, err := jfr.Open(path)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer r.Close()
	for {
		c, err := r.NextChunk()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// A truncated recording still yields its complete chunks; the
			// caller decides whether a partial result is acceptable.
			return fmt.Errorf("merge: %w", err)
		}
		m.stats.Chunks++
		if c.Producer == jfr.ProducerJDK {
			m.stats.JDKChunks++
		}
		if err := m.chunk(c); err != nil {
			return err
		}
		m.b.ResetChunk()
	}
}

// mono returns an event's CLOCK_MONOTONIC time.
func (m *merger) mono(c *jfr.Chunk, ticks int64) (int64, bool) {
	if t, ok := c.MonotonicNanos(ticks); ok {
		return t, true
	}
	if m.opt.Clock.Validate() != nil {
		return 0, false
	}
	return m.opt.Clock.ToMonotonic(c.EpochNanos(ticks)), true
}

// contextEvents are the events with a duration and a stack whose stack is
// a thread's Java context while they last.
var contextEvents = map[string]bool{
	"jdk.JavaMonitorEnter": true, "jdk.ThreadPark": true, "jdk.JavaMonitorWait": true,
	"jdk.ThreadSleep": true, "jdk.FileRead": true, "jdk.FileWrite": true, "jdk.FileForce": true,
	"jdk.SocketRead": true, "jdk.SocketWrite": true, "profiler.NativeLock": true,
}

func (m *merger) chunk(c *jfr.Chunk) error {
	smp := readSampling(c, &m.sampling)
	m.maxWall = max(m.maxWall, smp.wall)
	for c.Next() {
		ev := c.Event()
		name := ev.Type.Name
		switch {
		case name == "profiler.WallClockSample":
			s, _ := ev.WallClockSample()
			m.wall(c, s.Base, s.State, max(s.Samples, 1), s.TimeSpan, smp.wall)
		case name == "jdk.ExecutionSample":
			s, _ := ev.ExecutionSample()
			if smp.execIsWall {
				m.wall(c, s.Base, s.State, 1, 0, smp.wall)
			} else {
				m.cpu(c, s.Base, smp.cpu)
				if c.Producer == jfr.ProducerJDK {
					// The JDK has no wall sampler: its execution and native
					// method samples together are its view of wall time.
					m.wall(c, s.Base, "STATE_RUNNABLE", 1, 0, smp.cpu)
				}
			}
		case name == "jdk.NativeMethodSample":
			s, _ := ev.ExecutionSample()
			m.wall(c, s.Base, "STATE_NATIVE", 1, 0, smp.native)
		case contextEvents[name]:
			m.context(c, ev, name)
		case pauseEvents[name]:
			if t, ok := m.mono(c, ev.StartTicks()); ok {
				m.pauseLog.event(ev, t)
			}
		}
	}
	if err := c.Err(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return nil
}

// stack builds the stitched stack: kernel frames (if any), Java frames,
// the thread's pool at the root. The result is valid until the next call.
func (m *merger) stack(kernel []*profile.Location, java []*profile.Location, leaf *profile.Location, pool string) []*profile.Location {
	m.locs = append(m.locs[:0], kernel...)
	if leaf != nil {
		m.locs = append(m.locs, leaf)
	}
	m.locs = append(m.locs, java...)
	m.locs = append(m.locs, m.b.Synthetic("["+pool+"]"))
	return m.locs
}

func (m *merger) labels(th *thread, tid uint32, name, state, window string) pprofbuild.Labels {
	if name == "" {
		name = th.name
	}
	return pprofbuild.Labels{
		Str: map[string]string{"thread": name, "thread_pool": pprofbuild.ThreadPool(name), "state": state, "window": window},
		Num: map[string]int64{"tid": int64(tid)},
	}
}

func threadOf(b jfr.Base) (uint32, string, bool) {
	if b.Thread == nil || b.Thread.OSThreadID <= 0 {
		return 0, "", false
	}
	return uint32(b.Thread.OSThreadID), b.Thread.Name(), true
}

func jfrState(s string) string {
	return strings.ToLower(strings.TrimPrefix(s, "STATE_"))
}

// sample places a sampled event: its thread, CLOCK_MONOTONIC time and Java
// stack, remembered for the nearest-sample fallback of the thread's
// off-CPU intervals. ok is false (and counted) without a thread or a clock.
func (m *merger) sample(c *jfr.Chunk, b jfr.Base) (th *thread, tid uint32, name string, t int64, java []*profile.Location, ok bool) {
	tid, name, ok = threadOf(b)
	if !ok {
		m.stats.NoThread++
		return nil, 0, "", 0, nil, false
	}
	if t, ok = m.mono(c, b.StartTicks); !ok {
		m.stats.NoClock++
		return nil, 0, "", 0, nil, false
	}
	th = m.thread(tid, name)
	java = m.b.JavaStack(nil, b.Stack)
	if len(th.ivs) > 0 {
		th.samples = append(th.samples, timedStack{t: t, locs: java})
	}
	return th, tid, name, t, java, true
}

func (m *merger) wall(c *jfr.Chunk, b jfr.Base, state string, n, span, weight int64) {
	th, tid, name, start, java, ok := m.sample(c, b)
	if !ok {
		return
	}
	m.stats.WallSamples += n
	// A batched sample: n samples evenly spaced over [start, start+span].
	for i := int64(0); i < n; i++ {
		t := start
		if n > 1 {
			t += span * i / (n - 1)
		}
		var kernel []*profile.Location
		st := jfrState(state)
		if iv := th.containing(t); iv != nil {
			kernel, st = iv.kernel, iv.state
			m.stats.WallWithKernel++
			if iv.ctxKind < ctxWall {
				iv.ctx, iv.ctxKind = java, ctxWall
			}
			if iv.wait < waitLock {
				if w := stackWait(b.Stack); w > iv.wait {
					iv.wait = w
					if w == waitLock {
						iv.lockSite, iv.lockLeaf = java, m.b.Synthetic("[lock]")
					}
				}
			}
		}
		w := Baseline
		if m.slow(t) {
			w = Slow
		}
		var v [nTypes]int64
		v[iWall] = weight
		m.b.Add(m.stack(kernel, java, nil, pprofbuild.ThreadPool(th.name)), v[:], m.labels(th, tid, name, st, w))
	}
}

func (m *merger) cpu(c *jfr.Chunk, b jfr.Base, weight int64) {
	th, tid, name, t, java, ok := m.sample(c, b)
	if !ok {
		return
	}
	m.stats.CPUSamples++
	w := Baseline
	if m.slow(t) {
		w = Slow
	}
	var v [nTypes]int64
	v[iCPU] = weight
	m.b.Add(m.stack(nil, java, nil, pprofbuild.ThreadPool(th.name)), v[:], m.labels(th, tid, name, "running", w))
}

// context handles an event with a duration: a lock wait (weighed in the
// lock profile) or another wait that lends its stack to the off-CPU
// intervals it overlaps.
func (m *merger) context(c *jfr.Chunk, ev *jfr.Event, name string) {
	b := ev.Base()
	tid, tname, ok := threadOf(b)
	if !ok {
		m.stats.NoThread++
		return
	}
	s, ok := m.mono(c, b.StartTicks)
	if !ok {
		m.stats.NoClock++
		return
	}
	e := s + b.Duration
	th := m.thread(tid, tname)
	java := m.b.JavaStack(nil, b.Stack)
	m.stats.ContextEvents++
	// What the wait was: a lock (contention, whose waker is the holder), a
	// condition (Object.wait, Condition.await: woken by a notify) or
	// neither (sleep, I/O).
	var class *jfr.Class
	var prevOwner uint32
	var addr uint64
	wait := waitUnknown
	switch name {
	case "jdk.JavaMonitorEnter":
		if me, ok := ev.MonitorEnter(); ok {
			class, wait, addr = me.MonitorClass, waitLock, me.Address
			if me.PreviousOwner != nil && me.PreviousOwner.OSThreadID > 0 {
				prevOwner = uint32(me.PreviousOwner.OSThreadID)
			}
		}
	case "jdk.ThreadPark":
		// Only parks on a lock are contention. The JDK also records parks
		// without a blocker (parkNanos) and on conditions (an idle
		// handler waiting in its request queue's poll), which are waits
		// for work; async-profiler records lock parks only.
		if p, ok := ev.ThreadPark(); ok && p.ParkedClass != nil {
			// A park on a future, a latch or a queue is a hand-off: woken
			// by whoever completes it, not by a lock's holder.
			if n := p.ParkedClass.Name; strings.Contains(n, "ConditionObject") ||
				strings.HasPrefix(n, "java.util.concurrent.") && !strings.Contains(n, "Lock") && !strings.Contains(n, "Semaphore") {
				wait = waitCondition
			} else {
				class, wait, addr = p.ParkedClass, waitLock, p.Address
			}
		}
	case "jdk.JavaMonitorWait":
		wait = waitCondition
	}
	var leaf *profile.Location
	if wait == waitLock {
		leaf = m.b.Synthetic("[lock]")
		if class != nil {
			leaf = m.b.Synthetic("[lock " + class.Name + "]")
		}
	}
	th.overlapping(s, e, func(iv *interval) {
		// The event must cover most of the interval: JDK times reach the
		// monotonic clock through the chunk's wall-clock start, good to
		// about a millisecond, and a thread's lock wait ends just before
		// what it does inside the lock (a sleep, an fsync) begins.
		if ov := min(e, iv.end) - max(s, iv.start); 2*ov < iv.end-iv.start {
			return
		}
		if iv.ctxKind < ctxOverlap {
			iv.ctx, iv.ctxKind = java, ctxOverlap
		}
		if wait > iv.wait {
			iv.wait = wait
			if wait == waitLock {
				iv.lockSite, iv.lockLeaf, iv.prevOwner, iv.lockAddr = java, leaf, prevOwner, addr
			}
		}
	})
	if wait != waitLock {
		return
	}
	// The interval that ends when the event does is the wakeup that
	// brought the lock.
	var last *interval
	th.overlapping(e-int64(2*time.Millisecond), e+int64(2*time.Millisecond), func(iv *interval) {
		if iv.lockAddr == addr && iv.wait == waitLock && (last == nil || abs(iv.end-e) < abs(last.end-e)) {
			last = iv
		}
	})
	if last != nil && abs(last.end-e) <= int64(2*time.Millisecond) {
		last.acquired = true
	}
	if prevOwner != 0 && addr != 0 {
		if m.handoffs == nil {
			m.handoffs = map[uint64][]release{}
		}
		m.handoffs[addr] = append(m.handoffs[addr], release{t: e, holder: prevOwner})
	}
	m.stats.LockEvents++
	slow := m.slowPart(s, e)
	pool := pprofbuild.ThreadPool(th.name)
	state := "blocked"
	if name == "jdk.ThreadPark" {
		state = "parked"
	}
	for _, part := range []struct {
		w string
		v int64
	}{{Slow, slow}, {Baseline, b.Duration - slow}} {
		if part.v <= 0 {
			continue
		}
		var v [nTypes]int64
		v[iLock] = part.v
		m.b.Add(m.stack(nil, java, leaf, pool), v[:], m.labels(th, tid, tname, state, part.w))
	}
}

// emitOffCPU weighs every off-CPU interval by its time inside and outside
// the windows, under its Java context.
func (m *merger) emitOffCPU() {
	bound := int64(m.opt.ContextBound)
	if bound == 0 {
		bound = 2 * m.maxWall
	}
	m.bound = bound
	noCtx := m.b.Synthetic("[no Java context]")
	tids := make([]uint32, 0, len(m.threads))
	for tid := range m.threads {
		tids = append(tids, tid)
	}
	slices.Sort(tids) // deterministic sample order
	// Every interval gets its context before any is emitted: blame reads
	// the holders' contexts while it walks the waiters.
	for _, tid := range tids {
		th := m.threads[tid]
		slices.SortFunc(th.samples, func(a, b timedStack) int { return cmpInt(a.t, b.t) })
		for _, iv := range th.ivs {
			if iv.ctxKind == ctxNone && len(th.samples) > 0 && bound > 0 {
				if ts, ok := nearest(th.samples, iv.start, iv.end, bound); ok {
					iv.ctx, iv.ctxKind = ts.locs, ctxNearest
				}
			}
		}
	}
	for _, tid := range tids {
		th := m.threads[tid]
		for _, iv := range th.ivs {
			var leaf *profile.Location
			switch iv.ctxKind {
			case ctxWall:
				m.stats.ContextWall++
			case ctxOverlap:
				m.stats.ContextOverlap++
			case ctxNearest:
				m.stats.ContextNearest++
			default:
				m.stats.ContextNone++
				leaf = noCtx
			}
			slow := m.slowPart(iv.start, iv.end)
			for _, part := range []struct {
				w string
				v int64
			}{{Slow, slow}, {Baseline, iv.end - iv.start - slow}} {
				if part.v <= 0 {
					continue
				}
				var v [nTypes]int64
				v[iOffCPU] = part.v
				// Kernel frames, then the Java context ("[no Java context]"
				// when there is none), then the pool.
				m.b.Add(m.stack(iv.kernel, iv.ctx, leaf, pprofbuild.ThreadPool(th.name)), v[:], m.labels(th, tid, "", iv.state, part.w))
			}
		}
	}
	m.emitBlame(tids)
	m.led = m.ledger(tids)
}

// nearest returns the sample closest to [s, e) within bound.
func nearest(samples []timedStack, s, e, bound int64) (timedStack, bool) {
	i := sort.Search(len(samples), func(i int) bool { return samples[i].t >= s })
	best, bestD := timedStack{}, int64(-1)
	if i > 0 {
		if d := s - samples[i-1].t; d <= bound {
			best, bestD = samples[i-1], d
		}
	}
	if i < len(samples) {
		d := samples[i].t - e
		if samples[i].t < e {
			d = 0
		}
		if d <= bound && (bestD < 0 || d < bestD) {
			best, bestD = samples[i], d
		}
	}
	return best, bestD >= 0
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
