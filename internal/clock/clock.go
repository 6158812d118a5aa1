package clock

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Pair is one reading of both clocks, taken as close together as the kernel
// allows. Uncertainty bounds how far apart the two readings may be.
type Pair struct {
	Monotonic   int64 `json:"monotonic_ns"`
	Realtime    int64 `json:"realtime_ns"`
	Uncertainty int64 `json:"uncertainty_ns"`
}

// Offset returns realtime − monotonic: add it to a monotonic time to get
// wall-clock time.
func (p Pair) Offset() int64 { return p.Realtime - p.Monotonic }

// Mapping converts between the clocks over a capture. The offset between
// them drifts while NTP slews the wall clock (and jumps when it is stepped);
// between Start and End it is interpolated linearly, outside it the nearer
// pair's offset holds.
type Mapping struct {
	Start Pair `json:"start"`
	End   Pair `json:"end"`
}

// Validate reports a Mapping that cannot convert: missing pairs, or an end
// before the start.
func (m Mapping) Validate() error {
	if m.Start == (Pair{}) {
		return errors.New("clock mapping: no start pair")
	}
	if m.End == (Pair{}) {
		return errors.New("clock mapping: no end pair")
	}
	if m.End.Monotonic < m.Start.Monotonic {
		return fmt.Errorf("clock mapping: end (%d) before start (%d)", m.End.Monotonic, m.Start.Monotonic)
	}
	return nil
}

// offsetAtMono returns realtime − monotonic at monotonic time t.
func (m Mapping) offsetAtMono(t int64) int64 {
	span := m.End.Monotonic - m.Start.Monotonic
	switch {
	case span <= 0 || t <= m.Start.Monotonic:
		return m.Start.Offset()
	case t >= m.End.Monotonic:
		return m.End.Offset()
	}
	d := m.End.Offset() - m.Start.Offset()
	// d·(t−start)/span without overflow: drift is small, but spans are long.
	frac := float64(t-m.Start.Monotonic) / float64(span)
	return m.Start.Offset() + int64(math.Round(frac*float64(d)))
}

// ToRealtime converts a CLOCK_MONOTONIC time to Unix nanoseconds.
func (m Mapping) ToRealtime(mono int64) int64 { return mono + m.offsetAtMono(mono) }

// ToMonotonic converts Unix nanoseconds to CLOCK_MONOTONIC, the inverse of
// ToRealtime.
func (m Mapping) ToMonotonic(real int64) int64 {
	if t := real - m.Start.Offset(); t <= m.Start.Monotonic {
		return t
	}
	if t := real - m.End.Offset(); t >= m.End.Monotonic {
		return t
	}
	// Inside the mapping real = t + o0 + d·(t−s)/span, so
	// t − s = (real − o0 − s)·span/(span + d).
	span := m.End.Monotonic - m.Start.Monotonic
	d := m.End.Offset() - m.Start.Offset()
	x := real - m.Start.Offset() - m.Start.Monotonic
	return m.Start.Monotonic + int64(math.Round(float64(x)*(float64(span)/float64(span+d))))
}

// Time returns a CLOCK_MONOTONIC time as a time.Time in wall-clock terms.
func (m Mapping) Time(mono int64) time.Time { return time.Unix(0, m.ToRealtime(mono)) }

// Single returns a Mapping from one pair, for inputs recorded with only one
// (the offset is taken as constant).
func Single(p Pair) Mapping { return Mapping{Start: p, End: p} }
