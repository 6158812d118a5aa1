package merge

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/jfrconv"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/pprofbuild"
	"github.com/lockscope/lockscope/internal/testdata"
)

// picked is a wall sample of the fixture chosen to anchor synthetic intervals.
type picked struct {
	tid    uint32
	thread string
	t      int64
	frames []string // pprof names, innermost first
}

// pickWallSample finds the first single (unbatched) wall sample of a
// request-handler thread whose thread has no other wall sample within
// ±20 ms, so that an interval of ±5 ms around it holds only this one.
func pickWallSample(t *testing.T, path string) picked {
	t.Helper()
	r, err := jfr.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	type ws struct {
		t      int64
		frames []string
		single bool
		name   string
	}
	byTID := map[uint32][]ws{}
	b := pprofbuild.New([2]string{"x", "y"})
	for {
		c, err := r.NextChunk()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for c.Next() {
			s, ok := c.Event().WallClockSample()
			if !ok || s.Thread == nil || s.Stack == nil {
				continue
			}
			mono, ok := c.MonotonicNanos(s.StartTicks)
			if !ok {
				t.Fatal("fixture chunk is not monotonic")
			}
			var names []string
			for _, l := range b.JavaStack(nil, s.Stack) {
				names = append(names, l.Line[0].Function.Name)
			}
			tid := uint32(s.Thread.OSThreadID)
			byTID[tid] = append(byTID[tid], ws{t: mono, frames: names, single: s.Samples <= 1 && s.TimeSpan == 0, name: s.Thread.Name()})
		}
	}
	for tid, list := range byTID {
		slices.SortFunc(list, func(a, b ws) int { return cmpInt(a.t, b.t) })
		for i, w := range list {
			if !w.single || !strings.HasPrefix(w.name, "data-plane-kafka-request-handler") {
				continue
			}
			if (i > 0 && w.t-list[i-1].t < 20e6) || (i+1 < len(list) && list[i+1].t-w.t < 20e6) {
				continue
			}
			return picked{tid: tid, thread: w.name, t: w.t, frames: w.frames}
		}
	}
	t.Fatal("no isolated wall sample in fixture")
	return picked{}
}

func offcpuStream(t *testing.T, ivs ...bundle.Interval) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	w := bundle.NewOffCPUWriter(&buf)
	for i := range ivs {
		if err := w.Write(&ivs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func windows(ws ...latency.Window) *latency.WindowSet {
	return &latency.WindowSet{Clock: latency.Monotonic, Windows: ws}
}

func stackNames(s *profile.Sample) []string {
	var out []string
	for _, l := range s.Location {
		out = append(out, l.Line[0].Function.Name)
	}
	return out
}

func value(p *profile.Profile, s *profile.Sample, typ string) int64 {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return s.Value[i]
		}
	}
	return 0
}

// TestStitchAsyncProfilerWithSyntheticIntervals: a real async-profiler
// recording (monotonic ticks) and off-CPU intervals made up around one of
// its wall samples give exactly the expected stitched stacks and weights.
func TestStitchAsyncProfilerWithSyntheticIntervals(t *testing.T) {
	path := testdata.JFR(t, "asprof-wall-lock-monotonic.jfr")
	p := pickWallSample(t, path)
	kernel := []bundle.Frame{{Name: "jbd2_log_wait_commit", Kind: bundle.KindKernel}, {Name: "ext4_sync_file", Kind: bundle.KindKernel}}
	const ms = int64(time.Millisecond)
	in := Input{
		Recording: path,
		OffCPU: offcpuStream(t,
			// Around the picked sample: 5 ms before it, 5 ms after.
			bundle.Interval{TID: p.tid, TGID: 1, Thread: p.thread, Start: uint64(p.t - 5*ms), End: uint64(p.t + 5*ms),
				State: offcpu.Uninterruptible, Kernel: kernel},
			// A thread JFR never saw: no Java context.
			bundle.Interval{TID: 999999, TGID: 1, Thread: "kafka-scheduler-0", Start: uint64(p.t), End: uint64(p.t + ms),
				State: offcpu.Sleeping, Kernel: kernel[:1]},
		),
	}
	// The window starts at the sample: half of the first interval is slow.
	opt := Options{Windows: windows(latency.Window{Start: p.t, End: p.t + 100*ms})}
	res, err := Merge(in, opt)
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats
	if st.OffCPUIntervals != 2 || st.ContextWall != 1 || st.ContextNone != 1 || st.ContextOverlap+st.ContextNearest != 0 {
		t.Errorf("attribution stats %+v", st)
	}
	if st.WallWithKernel != 1 {
		t.Errorf("WallWithKernel = %d, want 1", st.WallWithKernel)
	}
	if got := pprofbuild.Total(res.Slow, TypeOffCPU); got != 5*ms+ms {
		t.Errorf("slow off-CPU total %d, want %d", got, 6*ms)
	}
	if got := pprofbuild.Total(res.Baseline, TypeOffCPU); got != 5*ms {
		t.Errorf("baseline off-CPU total %d, want %d", got, 5*ms)
	}
	pool := "[data-plane-kafka-request-handler]"
	wantStitched := append(append([]string{"jbd2_log_wait_commit_[k]", "ext4_sync_file_[k]"}, p.frames...), pool)
	wantNoCtx := []string{"jbd2_log_wait_commit_[k]", "[no Java context]", "[kafka-scheduler]"}
	var seenStitched, seenNoCtx, seenWall int
	for _, s := range res.All.Sample {
		names := stackNames(s)
		// A wall sample and an off-CPU interval with the same stitched
		// stack and labels are one pprof sample with both values.
		if value(res.All, s, TypeWall) > 0 && len(names) > 0 && names[0] == "jbd2_log_wait_commit_[k]" {
			seenWall++
			if !slices.Equal(names, wantStitched) || s.Label["window"][0] != Slow {
				t.Errorf("wall sample with kernel frames: %v in %s window", names, s.Label["window"][0])
			}
		}
		switch {
		case value(res.All, s, TypeOffCPU) > 0 && s.NumLabel["tid"][0] == int64(p.tid):
			seenStitched++
			if !slices.Equal(names, wantStitched) {
				t.Errorf("off-CPU stack\n got %v\nwant %v", names, wantStitched)
			}
			if s.Label["state"][0] != "uninterruptible" || s.Label["thread_pool"][0] != "data-plane-kafka-request-handler" {
				t.Errorf("labels %v", s.Label)
			}
		case value(res.All, s, TypeOffCPU) > 0:
			seenNoCtx++
			if !slices.Equal(names, wantNoCtx) {
				t.Errorf("no-context stack %v, want %v", names, wantNoCtx)
			}
		}
	}
	// The first interval is split at the window's start into two samples.
	if seenStitched != 2 || seenNoCtx != 1 || seenWall != 1 {
		t.Errorf("samples: %d stitched off-CPU (want 2), %d without context (want 1), %d wall with kernel (want 1)", seenStitched, seenNoCtx, seenWall)
	}
}

// TestTotalsAgreeWithConverter: without intervals and windows, the merged
// wall and lock totals equal what the JFR converter computes on its own.
func TestTotalsAgreeWithConverter(t *testing.T) {
	for _, name := range []string{"asprof-wall-lock.jfr", "asprof-wall-lock-nocstack-chunked.jfr", "asprof-wall-lock-nobatch.jfr"} {
		t.Run(name, func(t *testing.T) {
			path := testdata.JFR(t, name)
			res, err := Merge(Input{Recording: path}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for kind, typ := range map[string]string{"wall": TypeWall, "lock": TypeLock} {
				r, err := jfr.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				want, _, err := jfrconv.Profile(r, jfrconv.Options{Input: path, Event: kind, Format: "pprof"})
				r.Close()
				if err != nil {
					t.Fatal(err)
				}
				if got, w := pprofbuild.Total(res.All, typ), want.Sample; got != totalOf(want, 1) {
					t.Errorf("%s total %d, converter says %d (%d samples)", kind, got, totalOf(want, 1), len(w))
				}
			}
			if pprofbuild.Total(res.Slow, TypeWall) != 0 || pprofbuild.Total(res.Baseline, TypeWall) != pprofbuild.Total(res.All, TypeWall) {
				t.Error("without windows everything belongs to the baseline")
			}
		})
	}
}

func totalOf(p *profile.Profile, i int) int64 {
	var n int64
	for _, s := range p.Sample {
		n += s.Value[i]
	}
	return n
}

// TestWindowSplitOfBatchedSamples: a batched wall sample counts each of
// its samples in the window its own time falls in.
func TestWindowSplitOfBatchedSamples(t *testing.T) {
	path := testdata.JFR(t, "asprof-wall-lock-monotonic.jfr")
	all, err := Merge(Input{Recording: path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Find the recording's time range from the merged profile's samples:
	// use a window covering the whole recording, then none.
	full, err := Merge(Input{Recording: path}, Options{Windows: windows(latency.Window{Start: 0, End: 1 << 62})})
	if err != nil {
		t.Fatal(err)
	}
	if pprofbuild.Total(full.Slow, TypeWall) != pprofbuild.Total(all.All, TypeWall) || pprofbuild.Total(full.Baseline, TypeWall) != 0 {
		t.Errorf("a window over everything: slow %d, baseline %d, all %d", pprofbuild.Total(full.Slow, TypeWall),
			pprofbuild.Total(full.Baseline, TypeWall), pprofbuild.Total(all.All, TypeWall))
	}
	if pprofbuild.Total(full.Slow, TypeLock) != pprofbuild.Total(all.All, TypeLock) {
		t.Error("lock time not all slow under a window over everything")
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := Options{Windows: &latency.WindowSet{Clock: latency.Realtime, Windows: []latency.Window{{Start: 1, End: 2}}}}
	if bad.Validate() == nil {
		t.Error("realtime windows: want an error")
	}
	if _, err := Merge(Input{Recording: testdata.JFR(t, "asprof-wall-lock-cstackvm-threads-truncated.jfr")}, Options{}); err == nil {
		t.Error("truncated recording: want an error")
	}
}

// chunkClock is the clock pair an async-profiler chunk header carries: its
// start in epoch ns and in monotonic ticks (1e9 per second).
func chunkClock(t *testing.T, path string) clock.Mapping {
	t.Helper()
	r, err := jfr.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.NextChunk()
	if err != nil {
		t.Fatal(err)
	}
	return clock.Single(clock.Pair{Monotonic: c.Header.StartTicks, Realtime: c.Header.StartNanos})
}

// share returns the share of a sample type's total whose stack contains a
// frame with the given substring.
func share(p *profile.Profile, typ, frame string) float64 {
	var in, all int64
	for _, s := range p.Sample {
		v := value(p, s, typ)
		all += v
		for _, l := range s.Location {
			if strings.Contains(l.Line[0].Function.Name, frame) {
				in += v
				break
			}
		}
	}
	if all == 0 {
		return 0
	}
	return float64(in) / float64(all)
}

// TestFixtureWithItsLatencyWindows merges a real async-profiler recording of
// the produce-path workload with the workload's own latency windows (max
// over 20 ms): in the slow windows the handlers spend a larger share of wall
// time waiting for the log's monitor behind an fsync than outside them.
func TestFixtureWithItsLatencyWindows(t *testing.T) {
	path := testdata.JFR(t, "asprof-wall-lock-monotonic.jfr")
	f, err := os.Open(filepath.Join(testdata.Dir(t), "jfr", "workload", "latency", "asprof-wall-lock-monotonic.latency.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ws, err := latency.ReadWindowList(f, 20*time.Millisecond, "max", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := chunkClock(t, path)
	// The capture's span: async-profiler's ticks are nanoseconds.
	m.End = clock.Pair{Monotonic: m.Start.Monotonic + 20*int64(time.Second), Realtime: m.Start.Realtime + 20*int64(time.Second)}
	mono := &latency.WindowSet{Clock: latency.Monotonic, SLO: ws.SLO}
	for _, w := range ws.Windows {
		w.Start, w.End = m.ToMonotonic(w.Start), m.ToMonotonic(w.End)
		mono.Windows = append(mono.Windows, w)
	}
	if len(mono.Windows) == 0 {
		t.Fatal("no slow windows in the fixture's latency list")
	}
	res, err := Merge(Input{Recording: path}, Options{Windows: mono, Clock: m, Target: "kafka.Kafka (pid 1)"})
	if err != nil {
		t.Fatal(err)
	}
	// Each profile says the time it covers, so a diff can compare per
	// second, and names the process for pprof's title.
	span := m.End.Monotonic - m.Start.Monotonic
	if got, want := res.Slow.DurationNanos, int64(mono.Overlap(m.Start.Monotonic, m.End.Monotonic)); got != want || got == 0 {
		t.Errorf("slow profile covers %v, want the windows' %v", time.Duration(got), time.Duration(want))
	}
	if res.All.DurationNanos != span || res.Slow.DurationNanos+res.Baseline.DurationNanos != span {
		t.Errorf("durations all %d, slow %d + baseline %d, want the capture's %d", res.All.DurationNanos,
			res.Slow.DurationNanos, res.Baseline.DurationNanos, span)
	}
	for _, p := range []*profile.Profile{res.All, res.Slow, res.Baseline} {
		if len(p.Mapping) == 0 || p.Mapping[0].File != "kafka.Kafka (pid 1)" || p.CheckValid() != nil {
			t.Errorf("profile's main mapping %v (valid: %v), want the target's name", p.Mapping, p.CheckValid())
		}
	}
	slowWall := pprofbuild.Total(res.Slow, TypeWall)
	if slowWall == 0 {
		t.Fatal("no wall time in the slow windows: windows and recording do not line up")
	}
	// Roughly windows' share of the recording's 20 s, times the threads.
	if got, all := float64(slowWall)/float64(pprofbuild.Total(res.All, TypeWall)), float64(res.Stats.SlowTime)/float64(20*time.Second); got < all/3 || got > all*3 {
		t.Errorf("slow windows hold %.3f of wall time but %.3f of the recording", got, all)
	}
	// Measured on this fixture: UnifiedLog.append holds 10.2% of wall time in
	// the slow windows and 1.6% outside them; idle polling 13.9% and 24.2%.
	slow, base := share(res.Slow, TypeWall, "UnifiedLog.append"), share(res.Baseline, TypeWall, "UnifiedLog.append")
	if slow < 3*base || slow == 0 {
		t.Errorf("UnifiedLog.append's share of wall time: slow %.3f, baseline %.3f; want the slow share over 3x", slow, base)
	}
	idleSlow, idleBase := share(res.Slow, TypeWall, "pollRequestChannel"), share(res.Baseline, TypeWall, "pollRequestChannel")
	if idleSlow >= idleBase {
		t.Errorf("idle polling's share: slow %.3f, baseline %.3f; want less idling while requests are slow", idleSlow, idleBase)
	}

	sum := Summarize(res, Options{Windows: mono}, 5)
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", text.String())
	if len(sum.LockHotSpots) == 0 || !strings.HasSuffix(sum.LockHotSpots[0].Frame, "UnifiedLog.append") || sum.LockHotSpots[0].Class != "java.lang.Object" {
		t.Errorf("first lock hot spot %+v, want UnifiedLog.append on java.lang.Object", sum.LockHotSpots)
	}
	if len(sum.TopFrames) == 0 || !slices.ContainsFunc(sum.TopFrames[:min(3, len(sum.TopFrames))], func(f FrameShare) bool { return strings.HasSuffix(f.Frame, "UnifiedLog.append") }) {
		t.Errorf("UnifiedLog.append not among the 3 frames that grew most: %+v", sum.TopFrames)
	}
	if sum.Windows.Count != len(mono.Windows) || !strings.Contains(text.String(), "UnifiedLog.append on java.lang.Object") {
		t.Errorf("summary text:\n%s", text.String())
	}
}

// TestJDKRecordingNeedsClock: JDK Flight Recorder chunks count ticks from
// JVM start, so their events are placed only with a clock mapping.
func TestJDKRecordingNeedsClock(t *testing.T) {
	path := testdata.JFR(t, "jdk-lockscope-jfc.jfr")
	res, err := Merge(Input{Recording: path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.NoClock == 0 || pprofbuild.Total(res.All, TypeLock) != 0 {
		t.Errorf("without a clock: NoClock %d, lock total %d; want events skipped", res.Stats.NoClock, pprofbuild.Total(res.All, TypeLock))
	}
	m := clock.Single(clock.Pair{Monotonic: 1e12, Realtime: 1.7e18})
	res, err = Merge(Input{Recording: path}, Options{Clock: m})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.NoClock != 0 {
		t.Errorf("NoClock %d with a clock", res.Stats.NoClock)
	}
	r, err := jfr.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	monitors, _, err := jfrconv.Profile(r, jfrconv.Options{Input: path, Event: "monitor", Format: "pprof"})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r, _ = jfr.Open(path)
	all, _, err := jfrconv.Profile(r, jfrconv.Options{Input: path, Event: "lock", Format: "pprof"})
	if err != nil {
		t.Fatal(err)
	}
	// Lock time is every monitor wait plus the parks on locks, not the
	// JDK's parks on conditions and blocker-less parkNanos (idle waits).
	got := pprofbuild.Total(res.All, TypeLock)
	if got < totalOf(monitors, 1) || got >= totalOf(all, 1) {
		t.Errorf("lock total %d: want at least the monitor waits (%d) and less than every park too (%d)", got, totalOf(monitors, 1), totalOf(all, 1))
	}
	for _, fn := range res.All.Function {
		if strings.Contains(fn.Name, "ConditionObject") && strings.HasPrefix(fn.Name, "[lock") {
			t.Errorf("condition wait counted as lock contention: %s", fn.Name)
		}
	}
	// JDK wall time is its execution and native-method samples: 48 + 244 in this file.
	if res.Stats.WallSamples != 48+244 || res.Stats.CPUSamples != 48 {
		t.Errorf("wall samples %d (want 292), cpu samples %d (want 48)", res.Stats.WallSamples, res.Stats.CPUSamples)
	}
}
