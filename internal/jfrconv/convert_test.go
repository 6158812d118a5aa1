package jfrconv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/testdata"
)

// expected sums an event kind over a recording through jfr's typed views,
// independently of the converter: [count, nanoseconds or bytes].
// With execIsWall, jdk.ExecutionSample events count as wall samples
// (async-profiler's wall engine with nobatch).
func expected(t *testing.T, path, kind string, interval int64, execIsWall bool) [2]int64 {
	t.Helper()
	r, err := jfr.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sum [2]int64
	for {
		c, err := r.NextChunk()
		if err != nil {
			if err != io.EOF && !errors.Is(err, jfr.ErrTruncated) {
				t.Fatal(err)
			}
			return sum
		}
		for c.Next() {
			ev := c.Event()
			switch kind {
			case "wall":
				if w, ok := ev.WallClockSample(); ok {
					sum[0] += w.Samples
					sum[1] += w.Samples * interval
				}
				if _, ok := ev.ExecutionSample(); ok && ev.Type.Name == "jdk.ExecutionSample" && execIsWall {
					sum[0]++
					sum[1] += interval
				}
			case "cpu":
				if _, ok := ev.ExecutionSample(); ok && ev.Type.Name == "jdk.ExecutionSample" {
					sum[0]++
					sum[1] += interval
				}
			case "lock":
				if m, ok := ev.MonitorEnter(); ok {
					sum[0]++
					sum[1] += m.Duration
				}
				if p, ok := ev.ThreadPark(); ok {
					sum[0]++
					sum[1] += p.Duration
				}
			case "alloc":
				if a, ok := ev.Allocation(); ok && ev.Type.Name == "jdk.ObjectAllocationInNewTLAB" {
					sum[0]++
					sum[1] += a.TLABSize
				}
			}
		}
	}
}

var totalRE = regexp.MustCompile(`of (\d+)(ns|B)? total`)

// pprofTotal runs `go tool pprof -top` on a written profile and returns
// the total it prints for one sample index, in ns, bytes or counts.
func pprofTotal(t *testing.T, file string, index int) int64 {
	t.Helper()
	unit := "ns"
	out, err := exec.Command("go", "tool", "pprof", "-top", "-unit="+unit, "-sample_index="+strconv.Itoa(index), file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	m := totalRE.FindSubmatch(out)
	if m == nil {
		// Bytes are shown scaled even with -unit; ask for bytes.
		out, err = exec.Command("go", "tool", "pprof", "-top", "-unit=B", "-sample_index="+strconv.Itoa(index), file).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof -top: %v\n%s", err, out)
		}
		m = totalRE.FindSubmatch(out)
	}
	if m == nil {
		t.Fatalf("no total in go tool pprof output:\n%s", out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// TestConvertTotals converts fixtures of every producer and checks that
// the profile's totals equal the sums over the events, both in the
// written pprof file as `go tool pprof -top` reads it and in Stats.
func TestConvertTotals(t *testing.T) {
	tests := []struct {
		file, kind string
		interval   int64 // the sampling interval the recording used
		count      int64
		execIsWall bool
	}{
		{"asprof-wall-lock.jfr", "wall", 50_000_000, 12023, false},
		{"asprof-wall-lock.jfr", "lock", 0, 4326 + 10939, false},
		{"asprof-wall-lock-nobatch.jfr", "wall", 10_000_000, 58948, true},
		{"asprof-cpu-lock-alloc.jfr", "cpu", 1_000_000, 5319, false},
		{"asprof-cpu-lock-alloc.jfr", "alloc", 0, 1644, false},
		{"asprof-wall-lock-nocstack-chunked.jfr", "wall", 10_000_000, 60134, false},
		{"jdk-lockscope-jfc.jfr", "lock", 0, 10128 + 61899, false},
		{"jdk-lockscope-jfc.jfr", "cpu", 10_000_000, 48, false},
		{"jdk-lockscope-jfc-multichunk.jfr", "lock", 0, 11224 + 60566, false},
		{"asprof-jfrsync-wall-lock.jfr", "wall", 10_000_000, 64144, false},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.kind, func(t *testing.T) {
			in := testdata.JFR(t, tt.file)
			want := expected(t, in, tt.kind, tt.interval, tt.execIsWall)
			if want[0] != tt.count {
				t.Fatalf("independent count %d, want %d", want[0], tt.count)
			}
			out := filepath.Join(dir, strings.ReplaceAll(tt.file+"."+tt.kind, "/", "_")+".pb.gz")
			st, err := Run(Options{Input: in, Output: out, Event: tt.kind, Format: "pprof"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Totals[0] != want[0] || st.Totals[1] != want[1] {
				t.Errorf("stats totals %v, want %v", st.Totals, want)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			p, err := profile.Parse(f)
			f.Close()
			if err != nil {
				t.Fatalf("parsing the written profile: %v", err)
			}
			if err := p.CheckValid(); err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Sample {
				if len(s.Label["thread"]) != 1 || len(s.NumLabel["tid"]) != 1 {
					t.Fatalf("sample without thread labels: %v", s)
				}
			}
			for i := range 2 {
				if got := pprofTotal(t, out, i); got != want[i] {
					t.Errorf("go tool pprof -top total of %s: %d, want %d", p.SampleType[i].Type, got, want[i])
				}
			}
		})
	}
}

// TestConvertTruncated: a cut recording converts its complete chunks and
// reports the truncation.
func TestConvertTruncated(t *testing.T) {
	in := testdata.JFR(t, "asprof-wall-lock-nocstack-chunked-truncated.jfr")
	r, err := jfr.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, st, err := Profile(r, Options{Input: in, Event: "lock", Format: "pprof"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != 2 || !errors.Is(st.Err, jfr.ErrTruncated) || len(p.Sample) == 0 {
		t.Errorf("chunks %d, err %v, %d samples", st.Chunks, st.Err, len(p.Sample))
	}
	in = testdata.JFR(t, "asprof-wall-lock-cstackvm-threads-truncated.jfr")
	if _, err := Run(Options{Input: in, Output: filepath.Join(t.TempDir(), "x.pb.gz"), Event: "wall", Format: "pprof"}, nil); !errors.Is(err, jfr.ErrTruncated) {
		t.Errorf("no complete chunk: got %v, want ErrTruncated", err)
	}
}

// TestFolded checks folded output: totals, root-first order, thread roots.
func TestFolded(t *testing.T) {
	in := testdata.JFR(t, "asprof-wall-lock.jfr")
	var buf bytes.Buffer
	if _, err := Run(Options{Input: in, Event: "wall", Format: "folded", Threads: true}, &buf); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		i := strings.LastIndexByte(line, ' ')
		n, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil || i < 0 {
			t.Fatalf("bad folded line %q", line)
		}
		total += n
		if !strings.HasPrefix(line, "[") || !strings.Contains(line[:strings.IndexByte(line, ';')], " tid=") && !strings.Contains(line, "_tid=") {
			t.Fatalf("folded line without thread root: %q", line)
		}
	}
	if total != 12023 {
		t.Errorf("folded total %d, want 12023 wall samples", total)
	}
	if !strings.Contains(buf.String(), "java.lang.Thread.run;") {
		t.Errorf("no Java frames in folded output")
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{Event: "cpu", Format: "pprof"},
		{Input: "x", Event: "bogus", Format: "pprof"},
		{Input: "x", Event: "cpu", Format: "svg"},
		{Input: "x", Event: "cpu", Format: "pprof", From: "yesterday"},
	}
	for _, o := range bad {
		if o.Validate() == nil {
			t.Errorf("%+v validated", o)
		}
	}
	good := Options{Input: "x", Event: "wall", Format: "folded", From: "5s", To: "2026-11-25T01:26:43Z"}
	if err := good.Validate(); err != nil {
		t.Error(err)
	}
}

// TestTimeWindow: --from/--to relative to the recording's start split the
// samples without losing any.
func TestTimeWindow(t *testing.T) {
	in := testdata.JFR(t, "asprof-wall-lock.jfr")
	total := func(from, to string) int64 {
		r, err := jfr.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, st, err := Profile(r, Options{Input: in, Event: "lock", Format: "pprof", From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		return st.Totals[0]
	}
	a, b, all := total("", "10s"), total("10s", ""), total("", "")
	if a == 0 || b == 0 || a+b != all {
		t.Errorf("first 10 s %d + rest %d != all %d", a, b, all)
	}
}

// TestParallelEqualsSequential: converting chunks concurrently gives the
// same profile as converting them one after the other.
func TestParallelEqualsSequential(t *testing.T) {
	for _, tc := range []struct{ file, kind string }{
		{"asprof-wall-lock-nocstack-chunked.jfr", "wall"},
		{"jdk-lockscope-jfc-multichunk.jfr", "lock"},
		{"asprof-jfrsync-wall-lock.jfr", "wall"},
		{"asprof-wall-lock-nocstack-chunked-truncated.jfr", "lock"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := testdata.JFR(t, tc.file)
			opt := Options{Input: in, Event: tc.kind, Format: "pprof"}
			r, err := jfr.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			seq, sst, err := Profile(r, opt)
			if err != nil {
				t.Fatal(err)
			}
			par, pst, err := ProfileFile(in, opt, 2)
			if err != nil {
				t.Fatal(err)
			}
			if sst.Chunks != pst.Chunks || sst.Events != pst.Events || sst.Totals[0] != pst.Totals[0] || sst.Totals[1] != pst.Totals[1] ||
				(sst.Err == nil) != (pst.Err == nil) || len(seq.Sample) != len(par.Sample) || len(seq.Location) != len(par.Location) {
				t.Errorf("sequential %+v (%d samples, %d locations), parallel %+v (%d, %d)",
					sst, len(seq.Sample), len(seq.Location), pst, len(par.Sample), len(par.Location))
			}
		})
	}
}
