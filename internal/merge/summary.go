package merge

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/pprofbuild"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Summary is what a merge found, for people (WriteText) and tools (JSON).
type Summary struct {
	// Verdict is the answer: the causes of the slow windows' waiting,
	// ranked by their excess over the baseline (internal/verdict).
	Verdict *verdict.Verdict `json:"verdict,omitempty"`
	Windows WindowSummary    `json:"windows"`
	// TopFrames are the Java functions whose share of wall time grew the
	// most in the slow windows against the baseline (inclusive time).
	TopFrames []FrameShare `json:"top_frames"`
	// TopOffCPUFrames are the same by off-CPU time: where threads blocked.
	TopOffCPUFrames []FrameShare `json:"top_offcpu_frames"`
	// LockHotSpots are where threads waited for locks in the slow windows:
	// the Java frame that asked for the lock and the lock's class.
	LockHotSpots []LockShare `json:"lock_hot_spots"`
	// BlameChains say, for the locks waited for in the slow windows (in
	// the whole capture when there are no windows: BlameScope), what their
	// holders were doing meanwhile.
	BlameChains []BlameChain `json:"blame_chains"`
	BlameScope  string       `json:"blame_scope"`
	// KernelCauses are the kernel functions threads waited in (the
	// innermost kernel frame of off-CPU time) whose share grew the most in
	// the slow windows: a journal commit, a futex, a page fault.
	KernelCauses []FrameShare `json:"kernel_causes"`
	// ProfilerWall is the wall time of the profiler's own threads and
	// frames (JFR's recorder threads, async-profiler's) in the slow
	// windows, left out of every ranking above.
	ProfilerWall time.Duration `json:"profiler_wall_ns"`
	// FS relates the filesystem lens to the requests, when it ran.
	FS *FSSummary `json:"fs,omitempty"`
	// Phases compares the broker-side phases of slow and other produce
	// requests, when the latency source has them (a request log).
	Phases *PhaseSummary `json:"phases,omitempty"`
	// Replication follows acks=all produce requests' replication by the
	// followers' fetches on the wire, when the sniffer saw them.
	Replication *ReplicationSummary `json:"replication,omitempty"`
	Stats       Stats               `json:"stats"`
}

// WindowSummary describes the SLO-breach windows.
type WindowSummary struct {
	Count    int           `json:"count"`
	Total    time.Duration `json:"total_ns"`
	Requests int           `json:"slow_requests"`
	Worst    time.Duration `json:"worst_ns"`
}

// FrameShare is a frame's share of a sample type's time in the slow
// windows and outside them.
type FrameShare struct {
	Frame    string        `json:"frame"`
	Slow     float64       `json:"slow_share"`
	Baseline float64       `json:"baseline_share"`
	SlowTime time.Duration `json:"slow_ns"`
}

// BlameChain is one lock's waiting time in the slow windows charged to one
// kind of holder activity.
type BlameChain struct {
	// Site is the Java frame that waited for the lock, Class the lock's.
	Site  string `json:"site"`
	Class string `json:"class"`
	// SiteWaiting is all the waiting at this site in the slow windows.
	SiteWaiting time.Duration `json:"site_waiting_ns"`
	// Holder is the holder's thread pool; empty when no holder is known
	// (Activity then says why).
	Holder string `json:"holder"`
	// Activity is the holder's innermost frames, outermost first: its
	// Java frames, then the kernel function it waited in.
	Activity []string      `json:"activity"`
	Time     time.Duration `json:"time_ns"`
	// Share is Time's share of SiteWaiting.
	Share    float64 `json:"share"`
	Sentence string  `json:"sentence"`
}

// LockShare is one lock hot spot in the slow windows.
type LockShare struct {
	Frame    string        `json:"frame"`
	Class    string        `json:"class"`
	Slow     float64       `json:"slow_share"`
	Baseline float64       `json:"baseline_share"`
	SlowTime time.Duration `json:"slow_ns"`
}

// Summarize ranks what grew in the slow windows. top bounds each list.
func Summarize(res *Result, opt Options, top int) *Summary {
	s := &Summary{Stats: res.Stats}
	if ws := opt.Windows; ws != nil {
		s.Windows.Count = len(ws.Windows)
		s.Windows.Total = ws.Total()
		for _, w := range ws.Windows {
			s.Windows.Requests += w.Requests
			s.Windows.Worst = max(s.Windows.Worst, w.Worst)
		}
	}
	// Java frames say where in the broker; native frames under them (the
	// JVM's monitor code, libc) would only repeat it.
	s.TopFrames = diffShares(res.Slow, res.Baseline, TypeWall, pprofbuild.KindJava, top)
	s.TopOffCPUFrames = diffShares(res.Slow, res.Baseline, TypeOffCPU, pprofbuild.KindJava, top)
	s.KernelCauses = leafShares(res.Slow, res.Baseline, TypeOffCPU, top)
	s.LockHotSpots = lockSpots(res.Slow, res.Baseline, top)
	s.ProfilerWall = time.Duration(profilerTime(res.Slow, TypeWall))
	s.Verdict = verdict.Decide(VerdictInput(res, opt))
	if s.Windows.Count > 0 {
		s.BlameChains, s.BlameScope = blameChains(res.Slow, top), "slow windows"
	} else {
		s.BlameChains, s.BlameScope = blameChains(res.All, top), "whole capture"
	}
	return s
}

// VerdictInput is what the verdict is decided from, as far as the merge
// knows it (a capture adds the filesystem and CPU evidence).
func VerdictInput(res *Result, opt Options) verdict.Input {
	in := verdict.Input{Ledger: res.Ledger, Only: opt.Only}
	if opt.Windows != nil {
		in.Windows = len(opt.Windows.Windows)
	}
	in.SlowTime, in.BaseTime = time.Duration(res.Slow.DurationNanos), time.Duration(res.Baseline.DurationNanos)
	if l := res.Ledger; l != nil && in.SlowTime+in.BaseTime == 0 && l.Bins > 0 {
		// No clock pairs: the ledger's span and window bins stand in.
		var slow float64
		for _, w := range l.Slow {
			slow += float64(w)
		}
		in.SlowTime = time.Duration(slow * float64(l.Bin))
		in.BaseTime = time.Duration(int64(l.Bins)*l.Bin) - in.SlowTime
	}
	return in
}

// minShare is the least share of a lock's waiting a blame chain needs to
// be listed: it is printed as a whole percentage, and 0% says nothing.
const minShare = 0.005

func typeIndex(p *profile.Profile, typ string) int {
	return slices.IndexFunc(p.SampleType, func(v *profile.ValueType) bool { return v.Type == typ })
}

// inclusive returns, per function name, the time of samples whose stack
// contains it (counted once per sample), and the total.
func inclusive(p *profile.Profile, typ string, kind pprofbuild.Kind) (map[string]int64, int64) {
	i := typeIndex(p, typ)
	out := map[string]int64{}
	var total int64
	if i < 0 {
		return out, 0
	}
	seen := map[string]bool{}
	for _, s := range p.Sample {
		v := s.Value[i]
		if v == 0 || profilerSample(s) {
			continue
		}
		total += v
		clear(seen)
		for _, l := range s.Location {
			for _, ln := range l.Line {
				n := ln.Function.Name
				if seen[n] || pprofbuild.KindOf(ln.Function) != kind {
					continue
				}
				seen[n] = true
				out[n] += v
			}
		}
	}
	return out, total
}

func diffShares(slow, base *profile.Profile, typ string, kind pprofbuild.Kind, top int) []FrameShare {
	sIn, sTotal := inclusive(slow, typ, kind)
	bIn, bTotal := inclusive(base, typ, kind)
	return rank(sIn, sTotal, bIn, bTotal, top)
}

// rank orders frames by how much their share grew from baseline to slow.
func rank(sIn map[string]int64, sTotal int64, bIn map[string]int64, bTotal int64, top int) []FrameShare {
	if sTotal == 0 {
		return nil
	}
	var out []FrameShare
	for n, v := range sIn {
		fs := FrameShare{Frame: n, Slow: float64(v) / float64(sTotal), SlowTime: time.Duration(v)}
		if bTotal > 0 {
			fs.Baseline = float64(bIn[n]) / float64(bTotal)
		}
		out = append(out, fs)
	}
	slices.SortFunc(out, func(a, b FrameShare) int {
		da, db := a.Slow-a.Baseline, b.Slow-b.Baseline
		switch {
		case da > db:
			return -1
		case da < db:
			return 1
		}
		return strings.Compare(a.Frame, b.Frame)
	})
	return out[:min(top, len(out))]
}

// leafShares ranks the innermost kernel frames of a sample type by the
// growth of their share. Syscall entry frames are in every stack; the leaf
// is where the thread actually waited.
func leafShares(slow, base *profile.Profile, typ string, top int) []FrameShare {
	leaves := func(p *profile.Profile) (map[string]int64, int64) {
		i := typeIndex(p, typ)
		out := map[string]int64{}
		var total int64
		if i < 0 {
			return out, 0
		}
		for _, s := range p.Sample {
			v := s.Value[i]
			if v == 0 || profilerSample(s) {
				continue
			}
			total += v
			if len(s.Location) > 0 && pprofbuild.KindOf(s.Location[0].Line[0].Function) == pprofbuild.KindKernel {
				out[s.Location[0].Line[0].Function.Name] += v
			}
		}
		return out, total
	}
	sIn, sTotal := leaves(slow)
	bIn, bTotal := leaves(base)
	return rank(sIn, sTotal, bIn, bTotal, top)
}

// lockSpots groups lock time by (requesting frame, class): the leaf is the
// synthetic "[lock CLASS]" frame, the next one the Java frame that waited.
func lockSpots(slow, base *profile.Profile, top int) []LockShare {
	spots := func(p *profile.Profile) (map[[2]string]int64, int64) {
		i := typeIndex(p, TypeLock)
		out := map[[2]string]int64{}
		var total int64
		if i < 0 {
			return out, 0
		}
		for _, s := range p.Sample {
			v := s.Value[i]
			if v == 0 || len(s.Location) < 2 || profilerSample(s) {
				continue
			}
			total += v
			leaf := s.Location[0].Line[0].Function.Name
			class := strings.TrimSuffix(strings.TrimPrefix(leaf, "[lock "), "]")
			if leaf == "[lock]" {
				class = ""
			}
			out[[2]string{lockSite(s.Location[1:]), class}] += v
		}
		return out, total
	}
	sIn, sTotal := spots(slow)
	bIn, bTotal := spots(base)
	if sTotal == 0 {
		return nil
	}
	var out []LockShare
	for k, v := range sIn {
		ls := LockShare{Frame: k[0], Class: k[1], Slow: float64(v) / float64(sTotal), SlowTime: time.Duration(v)}
		if ls.Slow < minShare/10 {
			continue // would print as 0.0%
		}
		if bTotal > 0 {
			ls.Baseline = float64(bIn[k]) / float64(bTotal)
		}
		out = append(out, ls)
	}
	slices.SortFunc(out, func(a, b LockShare) int {
		switch {
		case a.SlowTime > b.SlowTime:
			return -1
		case a.SlowTime < b.SlowTime:
			return 1
		}
		return strings.Compare(a.Frame, b.Frame)
	})
	return out[:min(top, len(out))]
}

// lockSite names where a lock was waited for: the first Java frame of the
// waiter's stack that is not the lock's own machinery (LockSupport.park,
// AbstractQueuedSynchronizer, ReentrantLock...).
func lockSite(locs []*profile.Location) string {
	first := ""
	for _, l := range locs {
		fn := l.Line[0].Function
		if pprofbuild.KindOf(fn) != pprofbuild.KindJava {
			continue
		}
		if first == "" {
			first = fn.Name
		}
		if !strings.HasPrefix(fn.Name, "java.util.concurrent.locks.") && !strings.HasPrefix(fn.Name, "jdk.internal.misc.") &&
			!strings.HasPrefix(fn.Name, "sun.misc.Unsafe") {
			return fn.Name
		}
	}
	return first
}

// blameChains groups the slow blame time by lock site and holder activity.
func blameChains(p *profile.Profile, top int) []BlameChain {
	i := typeIndex(p, TypeBlame)
	if i < 0 {
		return nil
	}
	type key struct{ site, class, holder, activity string }
	byKey := map[key]int64{}
	bySite := map[[2]string]int64{}
	acts := map[string][]string{}
	for _, smp := range p.Sample {
		v := smp.Value[i]
		if v == 0 {
			continue
		}
		var k key
		var act []string
		lockAt := -1
		for j, l := range smp.Location {
			fn := l.Line[0].Function
			n := fn.Name
			switch {
			case strings.HasPrefix(n, "[lock"):
				lockAt = j
			case k.holder == "" && strings.HasPrefix(n, "[held by "):
				k.holder = strings.TrimSuffix(strings.TrimPrefix(n, "[held by "), "]")
			}
			if k.holder == "" && lockAt < 0 && len(act) < 4 {
				switch pprofbuild.KindOf(fn) {
				case pprofbuild.KindJava, pprofbuild.KindSynthetic:
					act = append(act, n)
				case pprofbuild.KindKernel:
					if len(act) == 0 {
						act = append(act, strings.TrimSuffix(n, "_[k]"))
					}
				}
			}
		}
		if lockAt < 0 {
			continue
		}
		leaf := smp.Location[lockAt].Line[0].Function.Name
		k.class = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(leaf, "[lock"), " "), "]")
		k.site = lockSite(smp.Location[lockAt+1:])
		// Read root to leaf: the holder's Java frames, then its kernel wait.
		slices.Reverse(act)
		k.activity = strings.Join(act, " → ")
		acts[k.activity] = act
		byKey[k] += v
		bySite[[2]string{k.site, k.class}] += v
	}
	var out []BlameChain
	for k, v := range byKey {
		siteTotal := bySite[[2]string{k.site, k.class}]
		c := BlameChain{Site: k.site, Class: k.class, SiteWaiting: time.Duration(siteTotal), Holder: k.holder,
			Activity: acts[k.activity], Time: time.Duration(v), Share: float64(v) / float64(siteTotal)}
		if c.Share < minShare {
			continue // "for 0% of it" says nothing
		}
		lock := k.site
		if k.class != "" {
			lock += " (" + k.class + ")"
		}
		if k.holder != "" {
			c.Sentence = fmt.Sprintf("waiters blocked %v on %s; the holder (%s) was in %s for %.0f%% of it",
				c.SiteWaiting.Round(time.Millisecond), lock, k.holder, k.activity, 100*c.Share)
		} else {
			c.Sentence = fmt.Sprintf("waiters blocked %v on %s; for %.0f%% of it: %s",
				c.SiteWaiting.Round(time.Millisecond), lock, 100*c.Share, strings.Trim(k.activity, "[]"))
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b BlameChain) int {
		switch {
		case a.Time > b.Time:
			return -1
		case a.Time < b.Time:
			return 1
		}
		return strings.Compare(a.Sentence, b.Sentence)
	})
	return out[:min(top, len(out))]
}

// WriteText writes the summary for a terminal.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	if v := s.Verdict; v != nil {
		writeVerdict(&b, v)
	}
	ws := s.Windows
	if ws.Count == 0 {
		b.WriteString("No SLO-breach windows: everything is in the baseline.\n")
	} else {
		fmt.Fprintf(&b, "SLO-breach windows: %d, %v in all", ws.Count, ws.Total.Round(time.Millisecond))
		if ws.Requests > 0 {
			fmt.Fprintf(&b, ", %d slow requests, worst %v", ws.Requests, ws.Worst.Round(time.Microsecond))
		}
		b.WriteString("\n")
	}
	if len(s.TopFrames) > 0 {
		b.WriteString("\nWhat grew in the slow windows (share of wall time, slow vs baseline):\n")
		if s.Stats.JDKChunks > 0 {
			b.WriteString("  (JDK Flight Recorder: only threads running Java or native code are sampled; see off-CPU time below for blocked ones)\n")
		}
		for _, f := range s.TopFrames {
			fmt.Fprintf(&b, "  %5.1f%% vs %5.1f%%  %s\n", 100*f.Slow, 100*f.Baseline, f.Frame)
		}
	}
	if len(s.TopOffCPUFrames) > 0 {
		b.WriteString("\nWhere blocked threads waited, growing in the slow windows (share of off-CPU time, slow vs baseline):\n")
		for _, f := range s.TopOffCPUFrames {
			fmt.Fprintf(&b, "  %5.1f%% vs %5.1f%%  %s\n", 100*f.Slow, 100*f.Baseline, f.Frame)
		}
	}
	if len(s.LockHotSpots) > 0 {
		b.WriteString("\nLock waits in the slow windows:\n")
		for _, l := range s.LockHotSpots {
			class := l.Class
			if class == "" {
				class = "unknown lock"
			}
			fmt.Fprintf(&b, "  %10v  %5.1f%% (baseline %5.1f%%)  %s on %s\n", l.SlowTime.Round(time.Millisecond), 100*l.Slow, 100*l.Baseline, l.Frame, class)
		}
	}
	if len(s.BlameChains) > 0 {
		fmt.Fprintf(&b, "\nWho held the locks waited for (%s):\n", s.BlameScope)
		for _, c := range s.BlameChains {
			fmt.Fprintf(&b, "  %s\n", c.Sentence)
		}
		bl := s.Stats.Blame
		fmt.Fprintf(&b, "  (%d lock waits: %d charged to their holders, %d woken by no one, %d by threads outside the JVM; %d condition wakeups not blamed)\n",
			bl.LockWaits, bl.Attributed, bl.NoWaker, bl.ForeignWaker, bl.ConditionWakeups)
	}
	if s.ProfilerWall > 0 {
		fmt.Fprintf(&b, "\nLeft out of the lists: %v of wall time in the slow windows was the profiler's own threads and frames (JFR's recorder, async-profiler).\n",
			s.ProfilerWall.Round(time.Millisecond))
	}
	if len(s.KernelCauses) > 0 {
		b.WriteString("\nKernel functions blocked threads waited under (share of off-CPU time, slow vs baseline):\n")
		for _, f := range s.KernelCauses {
			fmt.Fprintf(&b, "  %5.1f%% vs %5.1f%%  %s\n", 100*f.Slow, 100*f.Baseline, strings.TrimSuffix(f.Frame, "_[k]"))
		}
	}
	if s.Replication != nil {
		b.WriteString("\n")
		if err := s.Replication.WriteText(&b); err != nil {
			return err
		}
	}
	if s.Phases != nil {
		b.WriteString("\n")
		if err := s.Phases.WriteText(&b); err != nil {
			return err
		}
	}
	if s.FS != nil {
		b.WriteString("\n")
		if err := s.FS.WriteText(&b); err != nil {
			return err
		}
	}
	st := s.Stats
	fmt.Fprintf(&b, "\nInputs: %d JFR chunks, %d wall samples, %d cpu samples, %d lock waits, %d off-CPU intervals\n",
		st.Chunks, st.WallSamples, st.CPUSamples, st.LockEvents, st.OffCPUIntervals)
	if st.OffCPUIntervals > 0 {
		fmt.Fprintf(&b, "Java context of off-CPU intervals: %d wall sample inside, %d overlapping wait, %d nearest sample, %d none\n",
			st.ContextWall, st.ContextOverlap, st.ContextNearest, st.ContextNone)
	}
	if st.NoThread > 0 || st.NoClock > 0 {
		fmt.Fprintf(&b, "Skipped: %d events without a thread, %d JDK events without a clock mapping\n", st.NoThread, st.NoClock)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeVerdict writes the verdict first: the answer, then the ranked
// causes with their evidence.
func writeVerdict(b *strings.Builder, v *verdict.Verdict) {
	fmt.Fprintf(b, "%s\n", v.Answer)
	if len(v.Findings) == 0 {
		b.WriteString("\n")
		return
	}
	fmt.Fprintf(b, "\nCauses of the slow windows' waiting, by excess over the baseline (thread-time; %v of slow windows vs %v of baseline):\n",
		v.SlowTime.Round(time.Millisecond), v.BaseTime.Round(time.Millisecond))
	for i, f := range v.Findings {
		mark := " "
		if f.StandsOut {
			mark = "*"
		}
		fmt.Fprintf(b, " %s%d. %s\n", mark, i+1, f.Sentence)
		for _, e := range f.Evidence {
			fmt.Fprintf(b, "      %s\n", e)
		}
	}
	fmt.Fprintf(b, "  (* stands out. Left out in the slow windows: %v waiting for work, %v whose cause the wakeups do not name.)\n\n",
		v.Idle.Round(time.Millisecond), v.Unattributed.Round(time.Millisecond))
}
