package jfr

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lockscope/lockscope/internal/testdata"
)

var (
	bigOnce sync.Once
	bigPath string
	bigErr  error
)

// bigRecording decompresses the 195 MB fixture once per test binary into a
// temporary file (removed by TestMain) and returns its path.
func bigRecording(b *testing.B) string {
	b.Helper()
	gz := testdata.JFR(b, "asprof-big-wall1ms-lock1us-64t.jfr.gz")
	bigOnce.Do(func() {
		var in *os.File
		in, bigErr = os.Open(gz)
		if bigErr != nil {
			return
		}
		defer in.Close()
		var zr *gzip.Reader
		zr, bigErr = gzip.NewReader(in)
		if bigErr != nil {
			return
		}
		var dir string
		dir, bigErr = os.MkdirTemp("", "jfrbench")
		if bigErr != nil {
			return
		}
		benchDir = dir
		p := filepath.Join(dir, "big.jfr")
		var out *os.File
		out, bigErr = os.Create(p)
		if bigErr != nil {
			return
		}
		if _, bigErr = io.Copy(out, zr); bigErr == nil {
			bigErr = out.Close()
		}
		bigPath = p
	})
	if bigErr != nil {
		b.Fatalf("decompressing %s: %v", gz, bigErr)
	}
	return bigPath
}

var benchDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

func fileSize(b *testing.B, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// BenchmarkDecodeBig decodes every event of the big fixture with its
// thread and stack resolved (stacks are cached by id, as a converter uses
// them).
func BenchmarkDecodeBig(b *testing.B) {
	p := bigRecording(b)
	size := fileSize(b, p)
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := testdata.CPUTime()
	for b.Loop() {
		r, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		var sum int64
		for {
			c, err := r.NextChunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			for c.Next() {
				ev := c.Event()
				sum += ev.StartTicks()
				if ev.Stack() != nil {
					n++
				}
				ev.Thread()
			}
			if err := c.Err(); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
		if n < 9_000_000 {
			b.Fatalf("only %d events with stacks", n)
		}
	}
	testdata.ReportCPU(b, cpu0, size)
}

// BenchmarkCountBig only frames events (no field decoding): the floor.
func BenchmarkCountBig(b *testing.B) {
	p := bigRecording(b)
	size := fileSize(b, p)
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := testdata.CPUTime()
	for b.Loop() {
		r, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			c, err := r.NextChunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			for c.Next() {
				n++
			}
		}
		r.Close()
		if n != 9234462 {
			b.Fatalf("%d events", n)
		}
	}
	testdata.ReportCPU(b, cpu0, size)
}

// BenchmarkDecodeBigParallel is BenchmarkDecodeBig with the chunks decoded
// on two goroutines (the machine has two vCPUs), through Parallel.
func BenchmarkDecodeBigParallel(b *testing.B) {
	p := bigRecording(b)
	size := fileSize(b, p)
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := testdata.CPUTime()
	for b.Loop() {
		var n atomic.Int64
		err := Parallel(p, 2, func(c *Chunk) error {
			k := int64(0)
			var sum int64
			for c.Next() {
				ev := c.Event()
				sum += ev.StartTicks()
				if ev.Stack() != nil {
					k++
				}
				ev.Thread()
			}
			n.Add(k)
			return c.Err()
		})
		if err != nil {
			b.Fatal(err)
		}
		if n.Load() < 9_000_000 {
			b.Fatalf("only %d events with stacks", n.Load())
		}
	}
	testdata.ReportCPU(b, cpu0, size)
}
