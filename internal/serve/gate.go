package serve

import (
	"context"
	"sync"
)

// gate lets one capture run at a time: async-profiler allows one session
// per JVM, and two captures would profile each other's overhead.
//
// A triggered capture (an alert, the SLO watch) preempts a preemptible
// holder (a continuous-profiling period): it calls the holder's cancel
// and takes the gate when the holder releases it. A preemptible acquirer
// waits while the gate is held or a triggered acquirer is waiting, so
// continuous profiling resumes only after the triggered capture.
type gate struct {
	mu      sync.Mutex
	held    bool
	cancel  func() // the preemptible holder's, nil otherwise
	waiting int    // triggered acquirers waiting
	changed chan struct{}
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// acquire blocks until the gate is taken or ctx ends. preempt is the
// holder's cancel when the holder is preemptible, nil when it is not. The
// returned release may be called more than once.
func (g *gate) acquire(ctx context.Context, preempt func()) (release func(), err error) {
	triggered := preempt == nil
	g.mu.Lock()
	if triggered {
		g.waiting++
	}
	for {
		if !g.held && (triggered || g.waiting == 0) {
			g.held = true
			g.cancel = preempt
			if triggered {
				g.waiting--
			}
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(g.release) }, nil
		}
		if triggered && g.cancel != nil {
			g.cancel()
			g.cancel = nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		g.mu.Lock()
		if err := ctx.Err(); err != nil {
			if triggered {
				g.waiting--
				g.broadcast() // a preemptible acquirer may go now
			}
			g.mu.Unlock()
			return nil, err
		}
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.held = false
	g.cancel = nil
	g.broadcast()
	g.mu.Unlock()
}

// broadcast wakes every waiter; g.mu is held.
func (g *gate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// busy reports whether a capture holds the gate.
func (g *gate) busy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}
