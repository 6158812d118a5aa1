package latency

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// ClockPair is one moment read on both clocks of the capturing machine:
// CLOCK_MONOTONIC (the bundle's clock) and CLOCK_REALTIME (packets', logs').
type ClockPair struct {
	Mono int64 `json:"monotonic_ns"`
	Real int64 `json:"realtime_ns"`
}

// SampleClock reads both clocks, the realtime one on either side of the
// monotonic read, and keeps the midpoint, so the pair is exact to about the
// cost of one clock read.
func SampleClock() (ClockPair, error) {
	var r1, m, r2 unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r1); err != nil {
		return ClockPair{}, fmt.Errorf("read realtime clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m); err != nil {
		return ClockPair{}, fmt.Errorf("read monotonic clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r2); err != nil {
		return ClockPair{}, fmt.Errorf("read realtime clock: %w", err)
	}
	return ClockPair{Mono: m.Nano(), Real: (r1.Nano() + r2.Nano()) / 2}, nil
}

// ClockMap converts realtime to monotonic time with pairs sampled during a
// capture (at its start and end, at least). Between two pairs it
// interpolates, so an NTP slew during the capture is followed; outside them
// it uses the nearest pair's offset.
type ClockMap []ClockPair

// ToMono converts a realtime nanosecond time stamp.
func (m ClockMap) ToMono(real int64) int64 {
	switch {
	case len(m) == 0:
		return real
	case real <= m[0].Real:
		return real - m[0].Real + m[0].Mono
	}
	for i := 1; i < len(m); i++ {
		a, b := m[i-1], m[i]
		if real <= b.Real {
			if b.Real == a.Real {
				return real - a.Real + a.Mono
			}
			f := float64(real-a.Real) / float64(b.Real-a.Real)
			return a.Mono + int64(f*float64(b.Mono-a.Mono))
		}
	}
	last := m[len(m)-1]
	return real - last.Real + last.Mono
}

// TimeOf formats a realtime nanosecond time stamp for people.
func TimeOf(ns int64) time.Time { return time.Unix(0, ns) }
