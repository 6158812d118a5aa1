package report

import (
	"math"
	"time"
)

// Grid counts what happened by time (columns of Bin width from the start
// of the capture) and by a duration on a log scale (rows of Buckets.PerDecade
// rows a decade). It is the data of one heat map: pure, and the same for
// every renderer.
type Grid struct {
	// Bin is the width of a column; column i covers [i*Bin, (i+1)*Bin)
	// after the capture's start.
	Bin time.Duration `json:"bin_ns"`
	// Cols is the number of columns.
	Cols    int     `json:"cols"`
	Buckets Buckets `json:"buckets"`
	// Z holds the cell values, column-major: Z[col*Rows+row]. What a cell
	// holds (requests, or seconds off the CPU) is the grid's maker's to say.
	Z []float64 `json:"-"`
	// Dropped counts additions outside the time range (before the start or
	// after Cols*Bin): kept out, counted.
	Dropped int64 `json:"dropped"`
}

// Buckets are log-scale duration rows: row j covers
// [Lo*10^(j/PerDecade), Lo*10^((j+1)/PerDecade)). Values below Lo fall in
// row 0 and values above the top in the last row, so nothing is lost.
type Buckets struct {
	Lo        time.Duration `json:"lo_ns"`
	PerDecade int           `json:"per_decade"`
	Rows      int           `json:"rows"`
}

// NewBuckets returns the rows covering lo to hi, starting and ending on a
// decade so that axis ticks fall on row edges. lo is raised to 1µs at least.
func NewBuckets(lo, hi time.Duration, perDecade int) Buckets {
	lo = max(lo, time.Microsecond)
	hi = max(hi, lo+1)
	dlo := math.Floor(math.Log10(float64(lo)))
	dhi := math.Ceil(math.Log10(float64(hi)))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	return Buckets{Lo: time.Duration(math.Pow(10, dlo)), PerDecade: perDecade, Rows: int(dhi-dlo) * perDecade}
}

// Row returns the row of a duration.
func (b Buckets) Row(d time.Duration) int {
	if d <= b.Lo {
		return 0
	}
	r := int(math.Floor(math.Log10(float64(d)/float64(b.Lo)) * float64(b.PerDecade)))
	return min(max(r, 0), b.Rows-1)
}

// Edge returns the lower edge of row j (Edge(Rows) is the top).
func (b Buckets) Edge(j int) time.Duration {
	return time.Duration(float64(b.Lo) * math.Pow(10, float64(j)/float64(b.PerDecade)))
}

// logY is a duration's place on the y axis: log10 of seconds.
func logY(d time.Duration) float64 { return math.Log10(d.Seconds()) }

// NewGrid returns an empty grid of span's length cut into about cols
// columns of a round width (see niceBin).
func NewGrid(span time.Duration, cols int, b Buckets) *Grid {
	bin := niceBin(span / time.Duration(max(cols, 1)))
	n := int((span + bin - 1) / bin)
	n = max(n, 1)
	return &Grid{Bin: bin, Cols: n, Buckets: b, Z: make([]float64, n*b.Rows)}
}

// Add adds v to the cell of time t (since the start) and duration d.
func (g *Grid) Add(t, d time.Duration, v float64) {
	if t < 0 {
		g.Dropped++
		return
	}
	c := int(t / g.Bin)
	if c >= g.Cols {
		g.Dropped++
		return
	}
	g.Z[c*g.Buckets.Rows+g.Buckets.Row(d)] += v
}

// At returns the value of a cell.
func (g *Grid) At(col, row int) float64 { return g.Z[col*g.Buckets.Rows+row] }

// Max returns the largest cell value.
func (g *Grid) Max() float64 {
	m := 0.0
	for _, v := range g.Z {
		m = max(m, v)
	}
	return m
}

// Sum returns the sum of the cells.
func (g *Grid) Sum() float64 {
	s := 0.0
	for _, v := range g.Z {
		s += v
	}
	return s
}

// niceBin rounds a column width up to 1, 2 or 5 times a power of ten
// (at least 1ms), so that columns line up with the time axis' ticks.
func niceBin(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return time.Millisecond
	}
	p := time.Duration(math.Pow(10, math.Floor(math.Log10(float64(d)))))
	for _, m := range []time.Duration{1, 2, 5, 10} {
		if m*p >= d {
			return m * p
		}
	}
	return 10 * p
}
