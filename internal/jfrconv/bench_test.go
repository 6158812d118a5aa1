package jfrconv

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/testdata"
)

// bigRecording decompresses the 195 MB fixture into the benchmark's
// temporary directory (once per benchmark, outside the timed loop).
func bigRecording(b *testing.B) string {
	b.Helper()
	gz := testdata.JFR(b, "asprof-big-wall1ms-lock1us-64t.jfr.gz")
	in, err := os.Open(gz)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "big.jfr")
	out, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPprofBig converts the big fixture to a wall-clock pprof
// profile and writes it (gzipped protobuf): the whole `lockscope convert`.
func BenchmarkPprofBig(b *testing.B) {
	p := bigRecording(b)
	st, _ := os.Stat(p)
	size := st.Size()
	b.SetBytes(size)
	b.ReportAllocs()
	out := filepath.Join(b.TempDir(), "out.pb.gz")
	cpu0 := testdata.CPUTime()
	for b.Loop() {
		s, err := Run(Options{Input: p, Output: out, Event: "wall", Format: "pprof"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if s.Totals[0] < 6461472 {
			b.Fatalf("%d wall samples", s.Totals[0])
		}
	}
	testdata.ReportCPU(b, cpu0, size)
}

// BenchmarkProfileBig builds the profile without writing it.
func BenchmarkProfileBig(b *testing.B) {
	p := bigRecording(b)
	st, _ := os.Stat(p)
	size := st.Size()
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := testdata.CPUTime()
	for b.Loop() {
		r, err := jfr.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Profile(r, Options{Input: p, Event: "wall", Format: "pprof"}); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	testdata.ReportCPU(b, cpu0, size)
}
