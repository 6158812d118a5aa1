package clock

import "golang.org/x/sys/unix"

// Now returns CLOCK_MONOTONIC in nanoseconds: the bundle's clock, the same
// as bpf_ktime_get_ns in BPF programs.
func Now() int64 {
	var ts unix.Timespec
	// CLOCK_MONOTONIC cannot fail on Linux with a valid pointer.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func realtime() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	return ts.Nano()
}

// Sample reads both clocks: a monotonic reading bracketed by two realtime
// readings, the tightest of several tries, with the realtime midpoint. Both
// are vDSO calls, so the bracket is typically well under a microsecond.
func Sample() Pair {
	best := Pair{Uncertainty: 1<<63 - 1}
	for i := 0; i < 7; i++ {
		r0 := realtime()
		m := Now()
		r1 := realtime()
		if gap := r1 - r0; gap >= 0 && gap/2 < best.Uncertainty {
			best = Pair{Monotonic: m, Realtime: r0 + gap/2, Uncertainty: (gap + 1) / 2}
		}
	}
	return best
}
