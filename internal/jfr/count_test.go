package jfr

import (
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/testdata"
)

// countFile reads every event of a recording, resolving each event's thread
// and stack so that pool lookups are exercised too, and returns per-type
// counts, the number of chunks read and the error that stopped reading.
func countFile(t testing.TB, path string) (map[string]int, int, int, error) {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	counts := map[string]int{}
	total, chunks := 0, 0
	for {
		c, err := r.NextChunk()
		if err == io.EOF {
			return counts, total, chunks, nil
		}
		if err != nil {
			return counts, total, chunks, err
		}
		chunks++
		for c.Next() {
			ev := c.Event()
			counts[ev.Type.Name]++
			total++
			// The JDK refers to pool keys it never wrote (jfr print shows
			// them as absent: 11 JavaMonitorEnter stacks in the multichunk
			// file, the thread of jdk.Shutdown); async-profiler never does.
			if c.Producer == ProducerAsyncProfiler {
				if ev.Type.common.stack >= 0 && ev.StackID() != 0 && ev.Stack() == nil {
					t.Errorf("%s chunk %d: %s event at %d: stack %d unresolved", path, c.Index, ev.Type.Name, ev.Offset(), ev.StackID())
				}
				if ev.Type.common.thread >= 0 && ev.ThreadID() != 0 && ev.Thread() == nil {
					t.Errorf("%s: %s event: thread %d unresolved", path, ev.Type.Name, ev.ThreadID())
				}
			} else {
				ev.Stack()
				ev.Thread()
			}
		}
		if err := c.Err(); err != nil {
			return counts, total, chunks, err
		}
		if c.UnknownEvents != 0 {
			t.Errorf("%s chunk %d: %d events of undeclared types", path, c.Index, c.UnknownEvents)
		}
	}
}

const (
	wall    = "profiler.WallClockSample"
	monitor = "jdk.JavaMonitorEnter"
	park    = "jdk.ThreadPark"
	execS   = "jdk.ExecutionSample"
	tlab    = "jdk.ObjectAllocationInNewTLAB"
	sleep   = "jdk.ThreadSleep"
	force   = "jdk.FileForce"
	fwrite  = "jdk.FileWrite"
	fread   = "jdk.FileRead"
	mwait   = "jdk.JavaMonitorWait"
	produce = "lockscope.ProduceRequest"
	native  = "jdk.NativeMethodSample"
)

// TestFixtureCounts checks the exact per-file and per-type counts that
// PROVENANCE.md gives (from the JDK's RecordingFile) for every recording.
func TestFixtureCounts(t *testing.T) {
	tests := []struct {
		file   string
		chunks int
		total  int // -1: not given in PROVENANCE.md
		want   map[string]int
	}{
		{"asprof-wall-lock.jfr", 1, 19995, map[string]int{wall: 4644, monitor: 10939, park: 4326}},
		{"asprof-wall-lock-cstackvm-threads.jfr", 1, 35372, map[string]int{wall: 19549, monitor: 12305, park: 3432}},
		{"asprof-wall-lock-nocstack-chunked.jfr", 5, 36266, map[string]int{wall: 19591, monitor: 12302, park: 4283}},
		{"asprof-wall-lock-nobatch.jfr", 1, 73282, map[string]int{execS: 58948, monitor: 12622, park: 1626}},
		{"asprof-wall-lock-monotonic.jfr", 1, 31053, map[string]int{wall: 19155, monitor: 10607, park: 1204}},
		{"asprof-cpu-lock-alloc.jfr", 1, 20614, map[string]int{execS: 5319, monitor: 12108, park: 1455, tlab: 1644}},
		{"asprof-itimer-lock-alloc.jfr", 1, 15912, map[string]int{execS: 1087, monitor: 11828, park: 1232, tlab: 1677}},
		{"asprof-wall-debugnonsafepoints.jfr", 1, 19300, map[string]int{wall: 19214}},
		{"asprof-all.jfr", 1, 45964, map[string]int{wall: 4640, execS: 555, monitor: 12146, park: 1377, tlab: 1173,
			"profiler.LiveObject": 65, "profiler.Malloc": 140, "profiler.Free": 25727, "profiler.NativeLock": 46}},
		{"asprof-jfrsync-wall-lock.jfr", 2, 325569, map[string]int{wall: 19813, monitor: 11639, park: 3798, sleep: 59199,
			force: 4597, fwrite: 111020, fread: 3847, mwait: 11, produce: 110991}},
		{"asprof-attach-collect-wall-lock.jfr", 1, 26434, map[string]int{wall: 14548, monitor: 8640, park: 3168}},
		{"asprof-attach-startstop-wall-lock.jfr", 1, 21820, map[string]int{wall: 11684, monitor: 7221, park: 2840}},
		{"jdk-profile.jfr", 1, -1, map[string]int{execS: 45, monitor: 59, native: 125, "jdk.ObjectAllocationSample": 831, produce: 112380}},
		{"jdk-lockscope-jfc.jfr", 1, 366329, map[string]int{execS: 48, monitor: 10128, park: 61899, native: 244, sleep: 60079,
			force: 4668, fwrite: 112391, fread: 3879, mwait: 9, produce: 112362}},
		{"jdk-lockscope-jfc-multichunk.jfr", 6, 364849, map[string]int{execS: 81, monitor: 11224, park: 60566, native: 252,
			sleep: 59531, force: 4621, fwrite: 111187, fread: 3862, mwait: 21, produce: 111158}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			counts, total, chunks, err := countFile(t, testdata.JFR(t, tt.file))
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if chunks != tt.chunks {
				t.Errorf("chunks: got %d, want %d", chunks, tt.chunks)
			}
			if tt.total >= 0 && total != tt.total {
				t.Errorf("events: got %d, want %d", total, tt.total)
			}
			got := map[string]int{}
			for k := range tt.want {
				got[k] = counts[k]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTruncated checks that a cut recording yields every event of its
// complete chunks and then an *Error wrapping ErrTruncated that names the
// chunk and the offset where the data ends.
func TestTruncated(t *testing.T) {
	tests := []struct {
		file           string
		chunks, events int
		errChunk       int
		errOffset      int64
	}{
		{"asprof-wall-lock-nocstack-chunked-truncated.jfr", 2, 17604, 2, 518016},
		{"asprof-wall-lock-cstackvm-threads-truncated.jfr", 0, 0, 0, 484804},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, total, chunks, err := countFile(t, testdata.JFR(t, tt.file))
			if chunks != tt.chunks || total != tt.events {
				t.Errorf("got %d chunks, %d events; want %d, %d", chunks, total, tt.chunks, tt.events)
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrTruncated) {
				t.Fatalf("error: got %v, want an *Error wrapping ErrTruncated", err)
			}
			if e.Chunk != tt.errChunk || e.Offset != tt.errOffset {
				t.Errorf("error at chunk %d offset %d, want chunk %d offset %d (%v)", e.Chunk, e.Offset, tt.errChunk, tt.errOffset, err)
			}
		})
	}
}
