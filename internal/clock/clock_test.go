package clock

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestMappingRoundTrip(t *testing.T) {
	// Wall clock 1.7e18 ns; during 60 s NTP slews it 3 ms ahead.
	m := Mapping{
		Start: Pair{Monotonic: 1_000_000_000_000, Realtime: 1_700_000_000_000_000_000},
		End:   Pair{Monotonic: 1_060_000_000_000, Realtime: 1_700_000_060_003_000_000},
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mono, real int64
	}{
		{1_000_000_000_000, 1_700_000_000_000_000_000}, // start
		{1_060_000_000_000, 1_700_000_060_003_000_000}, // end
		{1_030_000_000_000, 1_700_000_030_001_500_000}, // halfway: half the slew
		{999_000_000_000, 1_699_999_999_000_000_000},   // before: start offset
		{1_070_000_000_000, 1_700_000_070_003_000_000}, // after: end offset
	}
	for _, tt := range tests {
		if got := m.ToRealtime(tt.mono); got != tt.real {
			t.Errorf("ToRealtime(%d) = %d, want %d", tt.mono, got, tt.real)
		}
		if got := m.ToMonotonic(tt.real); got != tt.mono {
			t.Errorf("ToMonotonic(%d) = %d, want %d", tt.real, got, tt.mono)
		}
	}
}

func TestValidate(t *testing.T) {
	p := Pair{Monotonic: 5, Realtime: 10}
	for _, m := range []Mapping{{}, {Start: p}, {Start: p, End: Pair{Monotonic: 4, Realtime: 9}}} {
		if m.Validate() == nil {
			t.Errorf("Validate(%+v): want an error", m)
		}
	}
	if err := Single(p).Validate(); err != nil {
		t.Errorf("Single: %v", err)
	}
}

func TestSampleAgreesWithTimeNow(t *testing.T) {
	p := Sample()
	now := time.Now().UnixNano()
	if d := now - p.Realtime; d < 0 || d > int64(time.Second) {
		t.Errorf("sampled realtime %d is %v from time.Now", p.Realtime, time.Duration(d))
	}
	if p.Uncertainty < 0 || p.Uncertainty > int64(time.Millisecond) {
		t.Errorf("uncertainty %v", time.Duration(p.Uncertainty))
	}
	if m := Now(); m < p.Monotonic {
		t.Errorf("monotonic went back: %d after %d", m, p.Monotonic)
	}
	// CLOCK_MONOTONIC counts from boot: /proc/uptime is the same clock, in seconds.
	if p.Monotonic <= 0 {
		t.Errorf("monotonic %d", p.Monotonic)
	}
}

func TestRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		s := rng.Int64N(1e15)
		span := rng.Int64N(1e13) + 1
		slew := rng.Int64N(2e7) - 1e7 // ±10 ms over the capture
		m := Mapping{
			Start: Pair{Monotonic: s, Realtime: 1.7e18 + s},
			End:   Pair{Monotonic: s + span, Realtime: 1.7e18 + s + span + slew},
		}
		mono := s - span/2 + rng.Int64N(2*span)
		back := m.ToMonotonic(m.ToRealtime(mono))
		if d := back - mono; d < -1 || d > 1 {
			t.Fatalf("%+v: %d -> %d -> %d", m, mono, m.ToRealtime(mono), back)
		}
	}
}
