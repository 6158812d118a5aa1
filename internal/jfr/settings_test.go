package jfr

import (
	"errors"
	"io"
	"testing"

	"github.com/lockscope/lockscope/internal/testdata"
)

// TestSampling reads the settings the fixtures were recorded with (their
// command lines are in PROVENANCE.md), carried from chunk to chunk.
func TestSampling(t *testing.T) {
	tests := []struct {
		file                 string
		wall, cpu, native    int64
		execIsWall, asprof   bool
		chunksWithoutSetting int
	}{
		// event=wall with the default interval (0 in the file: 50 ms).
		{"asprof-wall-lock.jfr", 50e6, 10e6, 20e6, true, true, 0},
		// interval=10ms in chunk 0 only; the other four carry it.
		{"asprof-wall-lock-nocstack-chunked.jfr", 10e6, 10e6, 20e6, true, true, 4},
		// event=cpu,interval=1ms: the wall interval is the default.
		{"asprof-cpu-lock-alloc.jfr", 50e6, 1e6, 20e6, false, true, 0},
		// lockscope.jfc: ExecutionSample and NativeMethodSample every 10 ms.
		{"jdk-lockscope-jfc.jfr", 10e6, 10e6, 10e6, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Open(testdata.JFR(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var s Sampling
			without := 0
			for {
				c, err := r.NextChunk()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for c.Next() {
					if ev := c.Event(); ev.Type.Name == "jdk.ActiveSetting" {
						s.Apply(c, ev)
						n++
					}
				}
				if n == 0 {
					without++
				}
				s.AsyncProfiler = c.Producer == ProducerAsyncProfiler
				if got := [3]int64{s.WallInterval(), s.CPUInterval(), s.NativeInterval()}; got != [3]int64{tt.wall, tt.cpu, tt.native} {
					t.Errorf("chunk %d: wall, cpu, native = %v, want %v", c.Index, got, [3]int64{tt.wall, tt.cpu, tt.native})
				}
				if s.ExecutionIsWall() != tt.execIsWall || s.AsyncProfiler != tt.asprof {
					t.Errorf("chunk %d: execution is wall %v, async-profiler %v", c.Index, s.ExecutionIsWall(), s.AsyncProfiler)
				}
			}
			if without != tt.chunksWithoutSetting {
				t.Errorf("%d chunks without settings, want %d", without, tt.chunksWithoutSetting)
			}
		})
	}
	for in, want := range map[string]int64{"10 ms": 10e6, "1 s": 1e9, "20 ms": 20e6, "5 us": 5e3} {
		if got, ok := ParseSettingDuration(in); !ok || got != want {
			t.Errorf("ParseSettingDuration(%q) = %d, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "10", "ms 10", "10 parsecs", "x ms"} {
		if _, ok := ParseSettingDuration(bad); ok {
			t.Errorf("ParseSettingDuration(%q): want failure", bad)
		}
	}
}
