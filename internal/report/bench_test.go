package report_test

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/report"
)

// benchBundle writes a bundle of a minute at 5000 produce requests a second
// (log-normal latencies with a slow tail) and 100k off-CPU intervals.
func benchBundle(b *testing.B) (*bundle.Bundle, *latency.WindowSet) {
	b.Helper()
	dir := b.TempDir() + "/b"
	w, err := bundle.Create(dir)
	if err != nil {
		b.Fatal(err)
	}
	const real0, mono0 = int64(1_700_000_000_000_000_000), int64(1_000_000_000_000)
	rng := rand.New(rand.NewPCG(1, 2))
	f, _ := w.Create(bundle.RequestsFile)
	jw := latency.NewJSONLWriter(f)
	wb := latency.NewBuilder(65*time.Millisecond, latency.Service, 0)
	const n = 300_000
	for i := 0; i < n; i++ {
		d := time.Duration(math.Exp(-7.5+1.2*rng.NormFloat64()) * 1e9) // log-normal, ~550µs median
		if rng.IntN(200) == 0 {
			d += time.Duration(rng.IntN(900)) * time.Millisecond
		}
		end := real0 + int64(i)*int64(time.Minute)/n + int64(d)
		r := &latency.Request{APIKey: latency.APIProduce, RequestEnd: end - int64(d), ResponseEnd: end, Wire: d, Service: d, Status: latency.Answered,
			Partitions: []latency.Partition{{Topic: "orders", Partition: int32(i % 12), Records: 3, Bytes: 200}}}
		jw.Write(r)
		wb.Add(r)
	}
	jw.Flush()
	f.Close()
	f, _ = w.Create(bundle.OffCPUFile)
	ow := bundle.NewOffCPUWriter(f)
	stack := []bundle.Frame{{Name: "futex_wait", Kind: bundle.KindKernel}, {Name: "do_futex", Kind: bundle.KindKernel}}
	for i := 0; i < 100_000; i++ {
		start := uint64(mono0 + int64(i)*int64(time.Minute)/100_000)
		ow.Write(&bundle.Interval{TID: uint32(100 + i%40), TGID: 99, Start: start, End: start + uint64(rng.IntN(50e6)+1e6),
			State: offcpu.State(i % 3), Kernel: stack})
	}
	ow.Flush()
	f.Close()
	pair := clock.Pair{Monotonic: mono0, Realtime: real0}
	meta := &bundle.Meta{Start: mono0, End: mono0 + int64(time.Minute), Clock: clock.Single(pair),
		Latency: &bundle.Latency{Source: "kafka:9092", SLO: 65 * time.Millisecond, Kind: "service", Requests: n}}
	if err := w.Finish(meta); err != nil {
		b.Fatal(err)
	}
	bb, err := bundle.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	ws := wb.Build()
	mono := *ws
	mono.Clock = latency.Monotonic
	mono.Windows = nil
	for _, win := range ws.Windows {
		win.Start, win.End = meta.Clock.ToMonotonic(win.Start), meta.Clock.ToMonotonic(win.End)
		mono.Windows = append(mono.Windows, win)
	}
	return bb, &mono
}

// BenchmarkWriteBundle: report.html of a minute of 5000 requests/s and
// 100k off-CPU intervals; SetBytes is the size of the inputs read.
func BenchmarkWriteBundle(b *testing.B) {
	bb, ws := benchBundle(b)
	var in int64
	for _, f := range bb.Meta.Files {
		in += f.Bytes
	}
	b.SetBytes(in)
	b.ReportAllocs()
	for b.Loop() {
		if err := report.WriteBundle(bb, ws, nil); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(bb.Path(bundle.ReportFile))
	b.ReportMetric(float64(st.Size()), "report-bytes")
}
