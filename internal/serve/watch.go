package serve

import "time"

// window counts produce requests and those over the SLO in a sliding
// window of whole seconds: a ring of per-second slots, so memory is fixed
// whatever the request rate.
type window struct {
	slots []slot
}

type slot struct {
	sec         int64
	total, over int
}

func newWindow(d time.Duration) *window {
	n := int((d + time.Second - 1) / time.Second)
	return &window{slots: make([]slot, max(n, 1))}
}

// add counts a request that ended at t (Unix ns).
func (w *window) add(t int64, over bool) {
	sec := t / int64(time.Second)
	s := &w.slots[int(sec%int64(len(w.slots)))]
	if s.sec != sec {
		if s.sec > sec {
			return // older than the window: a reordered straggler
		}
		*s = slot{sec: sec}
	}
	s.total++
	if over {
		s.over++
	}
}

// counts returns the requests, and those over the SLO, that ended in the
// window's seconds up to now (Unix ns).
func (w *window) counts(now int64) (total, over int) {
	sec := now / int64(time.Second)
	oldest := sec - int64(len(w.slots)) + 1
	for _, s := range w.slots {
		if s.sec >= oldest && s.sec <= sec {
			total += s.total
			over += s.over
		}
	}
	return total, over
}

// breached reports whether the window's share over the SLO passes the
// watch's threshold with enough requests to mean something.
func (c *WatchConfig) breached(total, over int) bool {
	return total >= c.MinRequests && float64(over) >= c.Threshold*float64(total)
}
