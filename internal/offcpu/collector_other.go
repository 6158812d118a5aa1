//go:build !linux

package offcpu

import (
	"context"
	"errors"
)

// Collector is not available off Linux.
type Collector struct{}

// Start always fails off Linux: eBPF is a Linux facility.
func Start(ctx context.Context, cfg Config) (*Collector, error) {
	return nil, errors.New("off-CPU collection needs Linux with eBPF")
}

// CheckEnvironment always fails off Linux.
func CheckEnvironment() error { return errors.New("off-CPU collection needs Linux with eBPF") }

// Intervals returns a closed channel.
func (c *Collector) Intervals() <-chan Interval {
	ch := make(chan Interval)
	close(ch)
	return ch
}

// Err returns nil.
func (c *Collector) Err() error { return nil }

// Counters returns zero counters.
func (c *Collector) Counters() (Counters, error) { return Counters{}, nil }

// Program returns Auto.
func (c *Collector) Program() Program { return Auto }

// Close does nothing.
func (c *Collector) Close() error { return nil }
