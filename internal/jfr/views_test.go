package jfr

import (
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/testdata"
)

// eachEvent calls fn for every event of a fixture.
func eachEvent(t *testing.T, name string, fn func(c *Chunk, ev *Event)) {
	t.Helper()
	r, err := Open(testdata.JFR(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		c, err := r.NextChunk()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for c.Next() {
			fn(c, c.Event())
		}
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestViewsAsyncProfiler checks the typed views against what PROVENANCE.md
// says of async-profiler's events.
func TestViewsAsyncProfiler(t *testing.T) {
	var walls, samples, monitors, parks int
	frameTypes := map[string]bool{}
	eachEvent(t, "asprof-wall-lock.jfr", func(c *Chunk, ev *Event) {
		if c.Producer != ProducerAsyncProfiler {
			t.Fatalf("producer %v", c.Producer)
		}
		if w, ok := ev.WallClockSample(); ok {
			walls++
			samples += int(w.Samples)
			if w.State != "STATE_RUNNABLE" && w.State != "STATE_SLEEPING" {
				t.Errorf("wall state %q", w.State)
			}
			if w.Samples < 1 || w.TimeSpan < 0 || w.Thread == nil || w.Thread.OSThreadID <= 0 || w.Stack == nil {
				t.Errorf("wall sample %+v", w)
			}
			for _, f := range w.Stack.Frames {
				frameTypes[f.Type] = true
			}
			mono, ok := c.MonotonicNanos(w.StartTicks)
			if !ok || mono != w.StartTicks || w.Start != c.Header.StartNanos+(w.StartTicks-c.Header.StartTicks) {
				t.Fatalf("time of %+v: mono %d %v", w.Base, mono, ok)
			}
		}
		if m, ok := ev.MonitorEnter(); ok {
			monitors++
			if m.Address == 0 || m.MonitorClass == nil || strings.Contains(m.MonitorClass.Name, "/") || m.PreviousOwner != nil || m.Duration <= 0 {
				t.Errorf("monitor enter %+v class %+v", m, m.MonitorClass)
			}
			for _, f := range m.Stack.Frames {
				if f.Type != "JIT compiled" {
					t.Errorf("lock frame type %q (async-profiler types every lock frame JIT compiled)", f.Type)
				}
			}
		}
		if p, ok := ev.ThreadPark(); ok {
			parks++
			if p.ParkedClass == nil || p.ParkedClass.Name != "java.util.concurrent.locks.ReentrantLock$NonfairSync" || p.Address == 0 {
				t.Errorf("park %+v", p)
			}
		}
	})
	if walls != 4644 || monitors != 10939 || parks != 4326 {
		t.Errorf("views: %d wall, %d monitor, %d park", walls, monitors, parks)
	}
	if samples < 2*walls || samples > 3*walls {
		t.Errorf("wall samples %d for %d events, want 2-3x (idle threads are batched)", samples, walls)
	}
	var got []string
	for k := range frameTypes {
		got = append(got, k)
	}
	sort.Strings(got)
	want := []string{"C++", "C1 compiled", "Inlined", "Interpreted", "JIT compiled", "Native"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wall frame types (-want +got):\n%s", diff)
	}
}

func TestViewsKernelFramesAndAllocations(t *testing.T) {
	kernel, allocs, cpu := 0, 0, 0
	eachEvent(t, "asprof-cpu-lock-alloc.jfr", func(c *Chunk, ev *Event) {
		if s, ok := ev.ExecutionSample(); ok {
			cpu++
			if s.State != "STATE_DEFAULT" {
				t.Errorf("cpu sample state %q", s.State)
			}
			for _, f := range s.Stack.Frames {
				if f.Type == "Kernel" {
					kernel++
					if f.Method.Class != nil && f.Method.Class.Name != "" {
						t.Errorf("kernel frame with class %q", f.Method.Class.Name)
					}
				}
			}
		}
		if a, ok := ev.Allocation(); ok {
			allocs++
			if a.ObjectClass == nil || a.AllocationSize <= 0 || a.TLABSize <= 0 {
				t.Errorf("allocation %+v", a)
			}
		}
	})
	if cpu != 5319 || allocs != 1644 || kernel == 0 {
		t.Errorf("%d cpu samples, %d allocations, %d kernel frames", cpu, allocs, kernel)
	}
}

func TestViewsJDK(t *testing.T) {
	var parked, parks, sleeps, files, noPath, produce int
	eachEvent(t, "jdk-lockscope-jfc.jfr", func(c *Chunk, ev *Event) {
		if c.Producer != ProducerJDK {
			t.Fatalf("producer %v", c.Producer)
		}
		if _, ok := c.MonotonicNanos(0); ok {
			t.Fatal("JDK ticks are not CLOCK_MONOTONIC")
		}
		if p, ok := ev.ThreadPark(); ok {
			parks++
			if p.ParkedClass != nil {
				parked++
			}
		}
		if s, ok := ev.ThreadSleep(); ok {
			sleeps++
			if s.Time <= 0 || s.Duration <= 0 {
				t.Errorf("sleep %+v", s)
			}
		}
		if f, ok := ev.FileIO(); ok {
			files++
			if f.Path == "" {
				noPath++ // writes to stdout: jfr print shows path = N/A
			}
		}
		if ev.Type.Name == "lockscope.ProduceRequest" {
			produce++
			topic, _ := ev.String("topic")
			v, ok := ev.Value("records")
			if topic != "orders" || !ok || v.Kind != KindInt || v.Int <= 0 || ev.Thread() == nil {
				t.Errorf("produce request: topic %q records %+v", topic, v)
			}
		}
	})
	if parks != 61899 || parked != 5811 || sleeps != 60079 || files != 4668+112391+3879 || noPath != 28 || produce != 112362 {
		t.Errorf("parks %d (parked class %d), sleeps %d, file events %d (%d without path), produce %d", parks, parked, sleeps, files, noPath, produce)
	}
}

// TestMixedProducers checks that each chunk of a jfrsync recording is read
// with its own metadata and clock.
func TestMixedProducers(t *testing.T) {
	var producers []Producer
	last := -1
	eachEvent(t, "asprof-jfrsync-wall-lock.jfr", func(c *Chunk, ev *Event) {
		if c.Index != last {
			producers = append(producers, c.Producer)
			last = c.Index
		}
	})
	if diff := cmp.Diff([]Producer{ProducerJDK, ProducerAsyncProfiler}, producers); diff != "" {
		t.Errorf("producers (-want +got):\n%s", diff)
	}
}
