package offcpu

import "testing"

func TestIntervalBlocked(t *testing.T) {
	for _, tc := range []struct {
		iv   Interval
		want uint64
	}{
		{Interval{Start: 100, End: 200, Wakeup: 150}, 50},
		{Interval{Start: 100, End: 200}, 100},              // no wakeup seen: all of it
		{Interval{Start: 0, End: 200}, 200},                // ditto, at time 0
		{Interval{Start: 100, End: 200, Wakeup: 50}, 100},  // a wakeup from before the interval
		{Interval{Start: 100, End: 200, Wakeup: 250}, 100}, // or after it
		{Interval{Start: 100, End: 200, Wakeup: 200}, 100},
	} {
		if got := tc.iv.Blocked(); got != tc.want {
			t.Errorf("%+v: Blocked() = %d, want %d", tc.iv, got, tc.want)
		}
	}
	for s, want := range map[State]string{Preempted: "runqueue", Sleeping: "sleeping", Uninterruptible: "uninterruptible", 0x80: "state-0x80"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d) = %q, want %q", s, got, want)
		}
	}
}
