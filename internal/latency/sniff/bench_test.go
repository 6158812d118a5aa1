package sniff

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff/synth"
)

var (
	benchRequests = flag.Int("sniff.requests", 200000, "produce requests in the benchmark capture")
	benchCapture  = flag.String("sniff.capture", "", "benchmark capture to use (default: generated in a temporary directory)")
	benchTshark   = flag.Bool("sniff.tshark", true, "time tshark's Kafka dissector on the same capture")
)

var benchFile struct {
	once sync.Once
	dir  string // generated here, removed by TestMain
	path string
	size int64
	err  error
}

// benchmarkCapture generates (once per run) a capture of produce traffic:
// 64 connections, 1–16 records of 200 bytes per request, every 1000th
// request slow.
func benchmarkCapture(b *testing.B) (string, int64) {
	benchFile.once.Do(func() {
		path := *benchCapture
		if path == "" {
			dir, err := os.MkdirTemp("", "lockscope-bench-sniff")
			if err != nil {
				benchFile.err = err
				return
			}
			benchFile.dir = dir
			path = filepath.Join(dir, "produce.pcap")
			f, err := os.Create(path)
			if err != nil {
				benchFile.err = err
				return
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			_, err = synth.Write(bw, synth.Config{Connections: 64, Requests: *benchRequests, SlowEvery: 1000}, nil)
			if err == nil {
				err = bw.Flush()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				benchFile.err = err
				return
			}
		}
		st, err := os.Stat(path)
		benchFile.path, benchFile.err = path, err
		if err == nil {
			benchFile.size = st.Size()
		}
	})
	if benchFile.err != nil {
		b.Fatal(benchFile.err)
	}
	return benchFile.path, benchFile.size
}

// BenchmarkReadCapture measures offline parsing (pcap reading, TCP
// reassembly, Kafka framing, request records) and, in the same run, tshark's
// Kafka dissector matching the same pairs; it reports both rates and the
// ratio (the target is ≥ 50×).
func BenchmarkReadCapture(b *testing.B) {
	path, size := benchmarkCapture(b)
	b.SetBytes(size)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = 0
		s, err := New(Options{Ports: []uint16{9092}}, func(*latency.Request) { n++ })
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ReadFile(path, s); err != nil {
			b.Fatal(err)
		}
	}
	ours := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/ours, "requests/s")
	if !*benchTshark {
		return
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		b.Log("tshark not installed: no comparison")
		return
	}
	b.StopTimer()
	start := time.Now()
	out, err := exec.Command("tshark", "-n", "-r", path, "-d", "tcp.port==9092,kafka",
		"-Y", "kafka.request_frame", "-T", "fields", "-e", "kafka.correlation_id").Output()
	if err != nil {
		b.Fatalf("tshark: %v", err)
	}
	theirs := time.Since(start).Seconds()
	pairs := 0
	for _, c := range out {
		if c == '\n' {
			pairs++
		}
	}
	b.ReportMetric(float64(size)/theirs/1e6, "tshark-MB/s")
	b.ReportMetric(theirs/ours, "x-tshark")
	b.Logf("capture %s: %.0f MB, %d requests; lockscope %.3fs, tshark %.3fs (%d pairs)", path, float64(size)/1e6, n, ours, theirs, pairs)
}

// TestMain removes the generated benchmark capture (hundreds of MB).
func TestMain(m *testing.M) {
	code := m.Run()
	if benchFile.dir != "" {
		os.RemoveAll(benchFile.dir)
	}
	os.Exit(code)
}
