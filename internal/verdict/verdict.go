package verdict

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// Verdict is the answer: what held the slow requests up, ranked, with the
// evidence, or why no answer can be given.
type Verdict struct {
	// Status is one of the Status constants; Answer is the first line of
	// the summary.
	Status Status `json:"status"`
	Answer string `json:"answer"`
	// Findings are the causes whose waiting grew in the slow windows,
	// largest excess first; StandsOut marks those the answer claims.
	Findings []Finding `json:"findings"`
	// SlowTime and BaseTime are the spans compared (window time, the rest
	// of the capture).
	SlowTime time.Duration `json:"slow_ns"`
	BaseTime time.Duration `json:"baseline_ns"`
	// Excess is all positive excess (thread-ns): the denominator of shares.
	Excess time.Duration `json:"excess_ns"`
	// Idle and Unattributed are thread-time in the slow windows left out:
	// waiting for work, and waiting whose cause the wakeups do not name.
	Idle         time.Duration `json:"idle_ns"`
	Unattributed time.Duration `json:"unattributed_ns"`
	// Shifts is how many shifted copies of the windows the permutation
	// test compared each cause with.
	Shifts int `json:"shifts"`
	// Phase is set when a phase no thread works on (remote: waiting for
	// the followers) held most of the slow requests' time; then Answer
	// says it first, and Threads is what the threads alone answered.
	Phase   *PhaseFinding `json:"phase,omitempty"`
	Threads string        `json:"threads_answer,omitempty"`
	// Only are the threads (name patterns) whose waiting was explained,
	// when not all were; the answer begins by naming them.
	Only []string `json:"only,omitempty"`
}

// Status says what kind of answer a verdict is.
type Status string

// Statuses.
const (
	// Found: at least one cause stands out.
	Found Status = "cause"
	// NoneStandsOut: slow windows exist, but no cause's waiting lines up
	// with them clearly enough to be claimed.
	NoneStandsOut Status = "none-stands-out"
	// NoSlowWindows: no request exceeded the SLO.
	NoSlowWindows Status = "no-slow-windows"
	// NoData: nothing to charge (no off-CPU intervals).
	NoData Status = "no-data"
)

// Finding is one cause with what shows it.
type Finding struct {
	Cause
	// SlowRate and BaseRate are thread-seconds of waiting per second,
	// inside the slow windows and outside them.
	SlowRate float64 `json:"slow_rate"`
	BaseRate float64 `json:"baseline_rate"`
	// Excess is the waiting in the slow windows beyond what the baseline
	// rate predicts for their length; Share its part of all excess.
	Excess time.Duration `json:"excess_ns"`
	Share  float64       `json:"share"`
	// P is the share of shifted windows that caught as much of this
	// cause's waiting as the real ones (small: it lines up with them).
	P         float64 `json:"p"`
	StandsOut bool    `json:"stands_out"`
	// Waiters are the thread pools held up, most first.
	Waiters []string `json:"waiters"`
	// Pauses and Worst: stop-the-world pauses in the slow windows (GC).
	Pauses   int           `json:"pauses,omitempty"`
	Worst    time.Duration `json:"worst_pause_ns,omitempty"`
	What     string        `json:"what,omitempty"`
	Evidence []string      `json:"evidence"`
	Sentence string        `json:"sentence"`
}

// Input is what a verdict is decided from.
type Input struct {
	Ledger *Ledger
	// SlowTime and BaseTime: the slow windows' time inside the capture,
	// and the rest.
	SlowTime, BaseTime time.Duration
	// Windows counts the slow windows.
	Windows int
	// CPU is the target's CPU accounting (cgroup throttling, host load),
	// when sampled; it turns a CPU cause into throttling.
	CPU *CPUEvidence
	// FS describes the devices the filesystem waits were on, when known.
	FS *FSEvidence
	// Phases are the requests' phases by the server's own account (its
	// request log), when the latency source has them.
	Phases *Phases
	// Replication is what the followers' fetches on the wire showed.
	Replication *Replication
	// Only are the threads (name patterns) the ledger was limited to
	// (empty: all).
	Only []string
	// Seed makes the permutation test repeatable (0: a fixed seed).
	Seed uint64
}

// CPUEvidence is what the capture's CPU sampler saw, over the slow windows
// and outside them.
type CPUEvidence struct {
	// Cgroup is the target's CPU cgroup; Quota its limit in CPUs (0: none).
	Cgroup string  `json:"cgroup,omitempty"`
	Quota  float64 `json:"quota_cpus,omitempty"`
	// Throttled is the time the cgroup was throttled per second, in the
	// slow windows and outside; Periods the share of enforcement periods
	// throttled.
	ThrottledSlow float64 `json:"throttled_slow"`
	ThrottledBase float64 `json:"throttled_baseline"`
	// HostBusy is the host's CPU use (0..1) in the slow windows and outside.
	HostBusySlow float64 `json:"host_busy_slow"`
	HostBusyBase float64 `json:"host_busy_baseline"`
	// TargetCPUs is the target's CPU use in CPUs, slow and baseline.
	TargetSlow float64 `json:"target_cpus_slow"`
	TargetBase float64 `json:"target_cpus_baseline"`
	CPUs       int     `json:"cpus"`
}

// FSEvidence names the filesystems of the target's files.
type FSEvidence struct {
	// Devices are "7:0 ext4 (data=ordered) on /var/lib/kafka", say.
	Devices []string `json:"devices"`
	// Journal lines: commit counts and lengths in the slow windows.
	Journal []string `json:"journal"`
}

// Thresholds of a claim: a cause stands out when its waiting lines up with
// the slow windows (no more than maxP of the shifted windows catch as
// much), its excess is at least minRate thread-seconds per second of slow
// window, and its share of all excess at least minShare.
const (
	maxP     = 0.01
	minRate  = 0.05
	minShare = 0.10
	// dominantShare (at twice the baseline's rate) and mostShare (at 1.5
	// times: a CPU saturated all along, worst in the windows) are the
	// shares that stand out without alignment, in at least minWindows
	// windows.
	dominantShare = 0.3
	mostShare     = 0.6
	minWindows    = 5
	shifts        = 400
	// listShare is the least share a finding needs to be listed (it
	// prints as a whole percentage).
	listShare = 0.01
)

// Decide ranks the ledger's causes by their excess in the slow windows;
// when the requests' phases show them waiting for the followers, that
// comes first.
func Decide(in Input) *Verdict {
	v := decideThreads(in)
	if len(in.Only) > 0 && v.Status != NoData && v.Status != NoSlowWindows {
		v.Only = in.Only
		a := v.Answer
		if strings.HasPrefix(a, "No ") {
			a = "n" + a[1:]
		}
		v.Answer = "The " + strings.Join(in.Only, ", ") + " threads' waiting only: " + a
	}
	f := phaseFinding(in.Phases)
	if f == nil {
		f = replicationFinding(in.Replication)
	}
	if f != nil {
		v.Phase, v.Threads, v.Status = f, v.Answer, Found
		v.Answer = v.phaseAnswer()
	}
	return v
}

// decideThreads ranks the ledger's causes by their excess in the slow
// windows.
func decideThreads(in Input) *Verdict {
	v := &Verdict{SlowTime: in.SlowTime, BaseTime: in.BaseTime, Shifts: shifts}
	l := in.Ledger
	switch {
	case l == nil || !l.OffCPU:
		v.Status = NoData
		v.Answer = "No verdict: no off-CPU intervals were collected (the eBPF collector did not run), so nothing tells what the threads waited for."
		return v
	case in.Windows == 0 || in.SlowTime <= 0:
		v.Status = NoSlowWindows
		v.Answer = "No request exceeded the SLO: there is no slow window to explain."
		return v
	}
	v.Idle, v.Unattributed = time.Duration(l.Idle), time.Duration(l.Unattributed)
	slowS, baseS := in.SlowTime.Seconds(), in.BaseTime.Seconds()
	groups := group(l.Evidence)
	rng := rand.New(rand.NewPCG(in.Seed, 0x6c6f636b73636f70))
	offsets := shiftOffsets(rng, l.Bins)
	sb := slowBins(l.Slow)
	var total float64
	for _, f := range groups {
		f.SlowRate = float64(f.slow) / 1e9 / slowS
		if baseS > 0 {
			f.BaseRate = float64(f.base) / 1e9 / baseS
		}
		f.Excess = time.Duration(float64(f.slow) - f.BaseRate*1e9*slowS)
		if f.Excess > 0 {
			total += float64(f.Excess)
		}
		f.P = 1
		if len(f.series) == len(l.Slow) {
			f.P = permutationP(f.series, sb, offsets)
		}
	}
	v.Excess = time.Duration(total)
	slices.SortFunc(groups, func(a, b *finding) int {
		if a.Excess != b.Excess {
			if a.Excess > b.Excess {
				return -1
			}
			return 1
		}
		return strings.Compare(a.key(), b.key())
	})
	for _, f := range groups {
		if f.Excess <= 0 || float64(f.Excess)/total < listShare {
			continue
		}
		f.Share = float64(f.Excess) / total
		rate := f.Excess.Seconds() / slowS
		// Aligned with the windows, or (a cause that lasts longer than
		// the windows it makes, like CPU hogs or a quota: shifted windows
		// land in its other periods as often) most of the excess at
		// twice the baseline's rate.
		// The second way needs windows enough to be more than chance:
		// a lone window just over the SLO is what a machine makes by
		// itself, and only alignment may name its cause.
		dominant := f.Share >= dominantShare && f.SlowRate >= 2*f.BaseRate ||
			f.Share >= mostShare && f.SlowRate >= 1.5*f.BaseRate
		f.StandsOut = rate >= minRate && f.Share >= minShare && (f.P <= maxP || in.Windows >= minWindows && dominant)
		if f.Kind == CPU && in.CPU != nil && throttled(in.CPU) {
			f.Kind = Throttling
		}
		f.Waiters = topWaiters(f.waiters, 3)
		f.Evidence = evidence(f, in)
		f.Sentence = sentence(&f.Finding)
		v.Findings = append(v.Findings, f.Finding)
	}
	if len(v.Findings) > 8 {
		v.Findings = v.Findings[:8]
	}
	if len(v.Findings) == 0 || !v.Findings[0].StandsOut {
		v.Status = NoneStandsOut
		windows := fmt.Sprintf("%d slow windows", in.Windows)
		if in.Windows == 1 {
			windows = "one slow window"
		}
		v.Answer = fmt.Sprintf("No cause stands out: no waiting of the threads grew in the %s (%v) clearly enough against the rest of the capture to be named",
			windows, in.SlowTime.Round(time.Millisecond))
		if len(v.Findings) > 0 {
			f := v.Findings[0]
			v.Answer += fmt.Sprintf("; the largest excess, %s (%.0f%%), lines up with them no better than chance would (p=%.2f) or is too small (%.2f thread-s/s)",
				f.short(), 100*f.Share, f.P, f.Excess.Seconds()/slowS)
		}
		v.Answer += "."
		return v
	}
	v.Status = Found
	v.Answer = v.Findings[0].Sentence
	return v
}

// finding is a Finding being built, with its raw sums.
type finding struct {
	Finding
	slow, base int64
	series     []float32
	waiters    map[string]int64
	kernels    map[string]int64 // slow time by innermost kernel function
	vias       map[string]int64 // time by mechanism
}

func (f *finding) key() string {
	return string(f.Kind) + "|" + f.Thread + "|" + f.Java + "|" + f.Kernel + "|" + f.Syscall
}

// group joins evidence that names the same cause: one CPU cause, one GC
// cause, and otherwise by kind, thread pool, telling frame and kernel
// function (the mechanism that led there is kept from the largest).
func group(evs []*Evidence) []*finding {
	by := map[string]*finding{}
	var out []*finding
	for _, e := range evs {
		c := e.Cause
		class := string(c.Kind)
		switch c.Kind {
		case CPU:
			c = Cause{Kind: CPU}
		case GC:
			c = Cause{Kind: GC}
		case Filesystem, Socket, Reclaim:
			// One wait of one thread pool, whichever kernel function it
			// ended in (a journal commit, a page's writeback) and whether
			// its Java context was caught: the largest names it, the
			// others are listed.
			c.Kernel, c.Java, c.App = "", "", ""
		case Lock, Handoff, Sleep, Other:
			// One activity of one thread pool, whether its own threads
			// waited in it or others waited for them: a holder sleeping
			// inside a lock is one cause.
			class = "activity"
		}
		k := class + "|" + c.Thread + "|" + c.Java + "|" + c.Kernel + "|" + c.Syscall
		f := by[k]
		if f == nil {
			f = &finding{Finding: Finding{Cause: c}, waiters: map[string]int64{}}
			f.series = make([]float32, len(e.Series))
			by[k] = f
			out = append(out, f)
		}
		if (c.Kind == Lock || c.Kind == Handoff) && f.Kind != Lock && f.Kind != Handoff {
			// What others waited for (through a lock or a hand-off)
			// names it better than its own threads' waiting; evidence
			// comes largest first, so the main way in wins.
			f.Kind = c.Kind
		}
		if c.Via != "" {
			if f.vias == nil {
				f.vias = map[string]int64{}
			}
			f.vias[c.Via] += e.Slow + e.Base
		}
		if f.Java == "" && e.Java != "" {
			f.Java, f.App = e.Java, e.App
		}
		if e.Kind == Filesystem || e.Kind == Socket || e.Kind == Reclaim {
			if f.kernels == nil {
				f.kernels = map[string]int64{}
			}
			f.kernels[e.Kernel] += e.Slow
			if f.Kernel == "" {
				f.Kernel = e.Kernel
			}
		}
		f.slow += e.Slow
		f.base += e.Base
		for i, x := range e.Series {
			f.series[i] += x
		}
		for w, t := range e.Waiters {
			f.waiters[w] += t
		}
		f.Pauses += e.Pauses
		if e.Worst > f.Worst {
			f.Worst, f.What = e.Worst, e.What
		}
	}
	for _, f := range out {
		f.Via = mainVia(f.vias, f.Kind)
	}
	return out
}

// mainVia is the mechanism that led to most of a cause's waiting. A named
// one (a lock's class, CompletableFuture, a queue) wins over "a futex" or
// "a condition" (waits whose Java context was not caught) unless those
// are four times as large; for a lock cause, only locks.
func mainVia(vias map[string]int64, k Kind) string {
	best, bestT, anon, anonT := "", int64(0), "", int64(0)
	for v, t := range vias {
		if k == Lock && !strings.HasPrefix(v, "lock") {
			continue
		}
		if v == "a futex" || v == "a condition" {
			if t > anonT || t == anonT && v < anon {
				anon, anonT = v, t
			}
			continue
		}
		if t > bestT || t == bestT && v < best {
			best, bestT = v, t
		}
	}
	if best == "" || anonT > 4*bestT {
		return anon
	}
	return best
}

func topWaiters(w map[string]int64, n int) []string {
	var out []string
	for k := range w {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if w[out[i]] != w[out[j]] {
			return w[out[i]] > w[out[j]]
		}
		return out[i] < out[j]
	})
	return out[:min(n, len(out))]
}

// shiftOffsets draws the circular shifts of the window series: at least a
// tenth of the capture away from no shift, so that a shifted window does not
// overlap the real one it came from.
func shiftOffsets(rng *rand.Rand, bins int) []int {
	lo := bins / 10
	if bins-2*lo < 2 {
		return nil
	}
	out := make([]int, shifts)
	for i := range out {
		out[i] = lo + rng.IntN(bins-2*lo)
	}
	return out
}

// slowBin is a bin of the ledger that the windows cover, by how much.
type slowBin struct {
	i int
	w float32
}

// slowBins lists the bins the windows cover: a few percent of all.
func slowBins(slow []float32) []slowBin {
	var out []slowBin
	for i, w := range slow {
		if w != 0 {
			out = append(out, slowBin{i, w})
		}
	}
	return out
}

// permutationP is the share of circular shifts of the window series that
// catch at least as much of series as the real windows do. Shifting keeps
// the windows' number, lengths and spacing and the cause's own rhythm, and
// breaks only their alignment.
func permutationP(series []float32, slow []slowBin, offsets []int) float64 {
	if len(offsets) == 0 {
		return 1
	}
	n := len(series)
	dot := func(off int) float64 {
		var s float64
		for _, b := range slow {
			j := b.i + off
			if j >= n {
				j -= n
			}
			s += float64(b.w) * float64(series[j])
		}
		return s
	}
	obs := dot(0)
	if obs <= 0 {
		return 1
	}
	ge := 0
	for _, off := range offsets {
		if dot(off) >= obs {
			ge++
		}
	}
	return float64(ge+1) / float64(len(offsets)+1)
}

func throttled(c *CPUEvidence) bool {
	return c.ThrottledSlow > 0.02 && c.ThrottledSlow > 2*c.ThrottledBase
}
