package offcpu

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// detachAll closes links in reverse order of attaching, so that what was
// attached first (the end of an operation, a switch-in) is watched until
// the last.
func detachAll(links []link.Link) error {
	var errs []error
	for i := len(links) - 1; i >= 0; i-- {
		if err := links[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("detaching program: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sumCounters sums the first n entries of a per-CPU counter array.
func sumCounters(m *ebpf.Map, n int) ([]uint64, error) {
	sums := make([]uint64, n)
	var percpu []uint64
	for i := range sums {
		if err := m.Lookup(uint32(i), &percpu); err != nil {
			return nil, fmt.Errorf("reading counter %d: %w", i, err)
		}
		for _, v := range percpu {
			sums[i] += v
		}
	}
	return sums, nil
}
