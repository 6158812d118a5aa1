package report

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/latency"
)

func TestBuckets(t *testing.T) {
	b := NewBuckets(300*time.Microsecond, 2*time.Second, 5)
	if b.Lo != 100*time.Microsecond || b.Rows != 25 {
		t.Fatalf("buckets %+v, want 100µs and 5 decades of 5 rows", b)
	}
	for _, tc := range []struct {
		d   time.Duration
		row int
	}{
		{0, 0}, {50 * time.Microsecond, 0}, {100 * time.Microsecond, 0},
		{time.Millisecond, 5}, {time.Millisecond - 1, 4}, {10 * time.Millisecond, 10},
		{65 * time.Millisecond, 14}, {time.Second, 20}, {10 * time.Second, 24}, {time.Hour, 24},
	} {
		if got := b.Row(tc.d); got != tc.row {
			t.Errorf("Row(%v) = %d, want %d", tc.d, got, tc.row)
		}
	}
	for j := 0; j < b.Rows; j++ {
		lo, hi := b.Edge(j), b.Edge(j+1)
		if j > 0 && b.Row(lo+1) != j || b.Row(hi-1) != j {
			t.Errorf("row %d [%v, %v): edges map to rows %d and %d", j, lo, hi, b.Row(lo+1), b.Row(hi-1))
		}
	}
	if one := NewBuckets(time.Millisecond, time.Millisecond, 4); one.Rows != 4 {
		t.Errorf("one value: %+v, want a decade", one)
	}
}

func TestNiceBin(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: time.Millisecond, 130 * time.Millisecond: 200 * time.Millisecond, 200 * time.Millisecond: 200 * time.Millisecond,
		201 * time.Millisecond: 500 * time.Millisecond, 700 * time.Millisecond: time.Second, 3 * time.Second: 5 * time.Second,
	} {
		if got := niceBin(in); got != want {
			t.Errorf("niceBin(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestGridAdd(t *testing.T) {
	g := NewGrid(10*time.Second, 10, NewBuckets(time.Millisecond, time.Second, 2))
	if g.Bin != time.Second || g.Cols != 10 || g.Buckets.Rows != 6 {
		t.Fatalf("grid %v × %d, %+v", g.Bin, g.Cols, g.Buckets)
	}
	g.Add(0, 2*time.Millisecond, 1)
	g.Add(999*time.Millisecond, 2*time.Millisecond, 1)
	g.Add(9*time.Second, 500*time.Millisecond, 3)
	g.Add(-1, time.Millisecond, 1)
	g.Add(10*time.Second, time.Millisecond, 1)
	if g.At(0, 0) != 2 || g.At(9, 5) != 3 || g.Sum() != 5 || g.Max() != 3 || g.Dropped != 2 {
		t.Errorf("cells (0,0)=%v (9,5)=%v sum %v max %v dropped %d", g.At(0, 0), g.At(9, 5), g.Sum(), g.Max(), g.Dropped)
	}
}

func TestPercentile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 1000; i++ {
		v = append(v, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond, 0.999: 999 * time.Millisecond, 1: time.Second, 0: time.Millisecond} {
		if got := Percentile(v, p); got != want {
			t.Errorf("p%v of 1..1000ms = %v, want %v", p, got, want)
		}
	}
	if got := Percentile(v[:1], 0.999); got != time.Millisecond {
		t.Errorf("p99.9 of one = %v", got)
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of none = %v", got)
	}
}

func TestLatenciesStats(t *testing.T) {
	l := Latencies{Metric: latency.Service, SLO: 65 * time.Millisecond}
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		l.Add(&latency.Request{APIKey: latency.APIProduce, ResponseEnd: int64(i), Wire: d + time.Millisecond, Service: d, Status: latency.Answered})
	}
	l.Add(&latency.Request{APIKey: latency.APIProduce, Status: latency.NoResponse})
	l.Add(&latency.Request{APIKey: 3, Service: time.Hour, Status: latency.Answered}) // Metadata: not produce
	got := l.Stats()
	want := Stats{Requests: 1000, Unmeasured: map[string]int64{"no_response": 1},
		P50: 500 * time.Millisecond, P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: time.Second,
		OverSLO: 935, Share: 0.935}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestHeatMapRender(t *testing.T) {
	g := NewGrid(5*time.Second, 50, NewBuckets(100*time.Microsecond, time.Second, 5))
	for i := 0; i < 500; i++ {
		g.Add(time.Duration(i)*10*time.Millisecond, time.Duration(100+i*i)*time.Microsecond, 1)
	}
	h := &HeatMap{Title: "t", Grid: g, ZLabel: "requests", SLO: 65 * time.Millisecond,
		Windows: []Span{{time.Second, 2 * time.Second}, {3 * time.Second, 3*time.Second + time.Microsecond}}}
	svg, err := h.SVG()
	if err != nil {
		t.Fatal(err)
	}
	cells := 0
	for _, v := range g.Z {
		if v > 0 {
			cells++
		}
	}
	// Every non-empty cell is one filled path; empty ones are not drawn.
	if n := strings.Count(string(svg), "<path"); n < cells {
		t.Errorf("svg has %d paths for %d non-empty cells", n, cells)
	}
	if !strings.Contains(string(svg), "SLO 65ms") {
		t.Error("svg lacks the SLO label")
	}
	pngb, err := h.PNG()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(pngb))
	if err != nil {
		t.Fatalf("png: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 900 || b.Dy() < 300 {
		t.Errorf("png is %v", b)
	}

	// Degenerate grids draw (no panic from the plotting library): all
	// empty, and one value everywhere.
	empty := NewGrid(time.Second, 10, NewBuckets(time.Millisecond, time.Millisecond, 5))
	if _, err := (&HeatMap{Grid: empty}).SVG(); err != nil {
		t.Errorf("empty grid: %v", err)
	}
	for i := range empty.Z {
		empty.Z[i] = 1
	}
	if _, err := (&HeatMap{Grid: empty, ZMin: 1, ZMax: 1}).SVG(); err != nil {
		t.Errorf("flat grid: %v", err)
	}
	if _, err := (&HeatMap{Grid: &Grid{}}).SVG(); err == nil {
		t.Error("a grid without cells: want an error")
	}
}

func TestTicks(t *testing.T) {
	ticks := durationTicks{top: 0}.Ticks(-4, 0.3)
	var labels []string
	for _, tk := range ticks {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
		if tk.Value > 0 {
			t.Errorf("tick %v above the map's top", tk.Value)
		}
	}
	if diff := cmp.Diff([]string{"100µs", "1ms", "10ms", "100ms", "1s"}, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	for d, want := range map[time.Duration]string{65 * time.Millisecond: "65ms", 1500 * time.Millisecond: "1.5s", 250 * time.Microsecond: "250µs", 0: "0", 12: "12ns"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
	if math.IsNaN(ShareChange(Stats{Share: 0.1}, Stats{Share: 0.05})) || ShareChange(Stats{Share: 0.1}, Stats{Share: 0.05}) != -0.5 {
		t.Error("ShareChange(10%, 5%) != -50%")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/tmp/b-1": "/tmp/b-1", "/tmp/a b": "'/tmp/a b'", "it's": `'it'\''s'`} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
