//go:build !linux

package offcpu

import (
	"context"
	"errors"
)

// FSTracer is not available off Linux.
type FSTracer struct{}

var errFSNotLinux = errors.New("filesystem tracing needs Linux with eBPF")

// StartFS always fails off Linux: eBPF is a Linux facility.
func StartFS(ctx context.Context, cfg FSConfig) (*FSTracer, error) { return nil, errFSNotLinux }

// Events returns a closed channel.
func (t *FSTracer) Events() <-chan FSEvent {
	ch := make(chan FSEvent)
	close(ch)
	return ch
}

// Journal returns a closed channel.
func (t *FSTracer) Journal() <-chan JournalEvent {
	ch := make(chan JournalEvent)
	close(ch)
	return ch
}

// Histograms returns nothing.
func (t *FSTracer) Histograms() ([]FSHistogram, error) { return nil, errFSNotLinux }

// Counters returns zero counters.
func (t *FSTracer) Counters() (FSCounters, error) { return FSCounters{}, nil }

// Missing returns nothing.
func (t *FSTracer) Missing() []string { return nil }

// Err returns nil.
func (t *FSTracer) Err() error { return nil }

// Close does nothing.
func (t *FSTracer) Close() error { return nil }
