package merge

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/testdata"
)

// TestProfilerThreadsLeftOut: in a JDK Flight Recorder recording the
// recorder's own threads (JFR Recorder Thread, JFR Periodic Tasks, the
// PlatformRecorder frames) are sampled like the broker's; they are the
// profiler at work, not the broker, and must not rank as what grew.
func TestProfilerThreadsLeftOut(t *testing.T) {
	for _, name := range []string{"jdk-profile", "jdk-lockscope-jfc"} {
		t.Run(name, func(t *testing.T) {
			path := testdata.JFR(t, name+".jfr")
			f, err := os.Open(filepath.Join(testdata.Dir(t), "jfr", "workload", "latency", name+".latency.csv"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ws, err := latency.ReadWindowList(f, 2*time.Millisecond, "max", 0)
			if err != nil {
				t.Fatal(err)
			}
			m := clock.Single(clock.Pair{Monotonic: 1e12, Realtime: 1.7e18})
			mono := ws.ToMonotonic(m)
			res, err := Merge(Input{Recording: path}, Options{Windows: mono, Clock: m})
			if err != nil {
				t.Fatal(err)
			}
			sum := Summarize(res, Options{Windows: mono}, 10)
			var text bytes.Buffer
			sum.WriteText(&text)
			t.Logf("%s", text.String())
			for _, list := range [][]FrameShare{sum.TopFrames, sum.TopOffCPUFrames, sum.KernelCauses} {
				for _, f := range list {
					if strings.HasPrefix(f.Frame, "jdk.jfr.") {
						t.Errorf("the profiler's own frame ranks: %+v", f)
					}
				}
			}
			// jdk-lockscope-jfc.jfr has PlatformRecording.getId waiting
			// on the PlatformRecorder, and lock sites that print as 0.0%.
			for _, l := range sum.LockHotSpots {
				if strings.HasPrefix(l.Frame, "jdk.jfr.") || l.Slow < 0.0005 {
					t.Errorf("lock hot spot listed: %+v", l)
				}
			}
		})
	}
}

// synth builds a profile of the merge's sample types from (thread, stack
// leaf-first, type index, value) rows.
func synth(rows ...synthRow) *profile.Profile {
	p := &profile.Profile{}
	for _, t := range []string{TypeWall, TypeLock, TypeOffCPU, TypeCPU, TypeBlame} {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: t, Unit: "nanoseconds"})
	}
	locs := map[string]*profile.Location{}
	for _, r := range rows {
		var ls []*profile.Location
		for _, n := range strings.Split(r.stack, ";") {
			if locs[n] == nil {
				fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: n, SystemName: n}
				if strings.HasSuffix(n, "_[k]") {
					fn.Filename = "[kernel]"
				}
				p.Function = append(p.Function, fn)
				locs[n] = &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
				p.Location = append(p.Location, locs[n])
			}
			ls = append(ls, locs[n])
		}
		v := make([]int64, nTypes)
		v[r.typ] = r.v
		p.Sample = append(p.Sample, &profile.Sample{Location: ls, Value: v, Label: map[string][]string{"thread": {r.thread}}})
	}
	return p
}

type synthRow struct {
	thread, stack string
	typ           int
	v             int64
}

func TestSummaryLeavesOutProfilerAndZeroShares(t *testing.T) {
	ms := int64(time.Millisecond)
	slow := synth(
		synthRow{"data-plane-kafka-request-handler-0", "java.io.FileDescriptor.sync;UnifiedLog.append;KafkaApis.handle", iWall, 400 * ms},
		synthRow{"data-plane-kafka-request-handler-1", "poll;KafkaRequestHandler.run", iWall, 100 * ms},
		// The recorder's own work: a JFR thread and, on the attach
		// listener, PlatformRecorder frames.
		synthRow{"JFR Periodic Tasks", "jdk.jfr.internal.RequestEngine.doPeriodic;jdk.jfr.internal.PlatformRecorder.periodicTask", iWall, 900 * ms},
		synthRow{"Attach Listener", "jdk.jfr.internal.PlatformRecorder.stop;jdk.jfr.internal.dcmd.DCmdStop.execute", iWall, 300 * ms},
		synthRow{"JFR Recorder Thread", "futex_wait_[k];jdk.jfr.internal.JVM.emitEvent", iOffCPU, 800 * ms},
		synthRow{"data-plane-kafka-request-handler-1", "jbd2_log_wait_commit_[k];java.io.FileDescriptor.sync", iOffCPU, 200 * ms},
		synthRow{"JFR Recorder Thread", "[lock jdk.jfr.internal.PlatformRecorder];jdk.jfr.internal.PlatformRecording.getId", iLock, 50 * ms},
		synthRow{"data-plane-kafka-request-handler-1", "[lock java.lang.Object];UnifiedLog.append", iLock, 300 * ms},
		// Blame: 999 of 1000 ms charged to the holder's fsync, 1 ms to
		// another activity, which would print as "for 0% of it".
		synthRow{"data-plane-kafka-request-handler-1", "jbd2_log_wait_commit_[k];FileDescriptor.sync;[held by data-plane-kafka-request-handler];[lock java.lang.Object];UnifiedLog.append", iBlame, 999 * ms},
		synthRow{"data-plane-kafka-request-handler-1", "RecordBatch.validate;[held by data-plane-kafka-request-handler];[lock java.lang.Object];UnifiedLog.append", iBlame, 1 * ms},
	)
	base := synth(synthRow{"data-plane-kafka-request-handler-1", "poll;KafkaRequestHandler.run", iWall, 1000 * ms})
	sum := Summarize(&Result{Slow: slow, Baseline: base, All: slow}, Options{Windows: windows(latency.Window{Start: 0, End: 1})}, 10)
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", text.String())
	for _, list := range [][]FrameShare{sum.TopFrames, sum.TopOffCPUFrames, sum.KernelCauses} {
		for _, f := range list {
			if strings.HasPrefix(f.Frame, "jdk.jfr.") || f.Frame == "futex_wait_[k]" {
				t.Errorf("the profiler's own frame ranks: %+v", f)
			}
		}
	}
	if !slices.ContainsFunc(sum.TopFrames[:min(3, len(sum.TopFrames))], func(f FrameShare) bool { return f.Frame == "UnifiedLog.append" && f.Slow == 0.8 }) {
		t.Errorf("top frames %+v, want UnifiedLog.append first at 80%% of the broker's wall time", sum.TopFrames)
	}
	if len(sum.LockHotSpots) != 1 || sum.LockHotSpots[0].Frame != "UnifiedLog.append" {
		t.Errorf("lock hot spots %+v, want only UnifiedLog.append", sum.LockHotSpots)
	}
	if sum.ProfilerWall != 1200*time.Millisecond || !strings.Contains(text.String(), "1.2s of wall time in the slow windows was the profiler's own") {
		t.Errorf("profiler wall %v; want 1.2s left out and said so", sum.ProfilerWall)
	}
	if len(sum.BlameChains) != 1 || strings.Contains(text.String(), " 0% of it") {
		t.Errorf("blame chains %+v: want the 0%% one left out", sum.BlameChains)
	}
}
