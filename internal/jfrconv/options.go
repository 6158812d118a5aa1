package jfrconv

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options are the settings of one conversion, bound from the command line.
type Options struct {
	Input   string
	Output  string // "" or "-" writes to stdout
	Event   string // see Kinds
	Format  string // "pprof" or "folded"
	From    string // RFC 3339 time, or a Go duration from the recording's start; "" = unbounded
	To      string
	Threads bool // add the thread as the root frame (per-thread flame graphs)
}

// Kinds lists the accepted values of Options.Event.
var Kinds = []string{"cpu", "wall", "lock", "monitor", "park", "sleep", "io", "nativelock", "alloc", "live", "malloc", "native"}

// Formats lists the accepted values of Options.Format.
var Formats = []string{"pprof", "folded"}

// Validate checks the options without touching the input.
func (o *Options) Validate() error {
	if o.Input == "" {
		return fmt.Errorf("no input recording given")
	}
	if !contains(Kinds, o.Event) {
		return fmt.Errorf("unknown event kind %q: use one of %s", o.Event, strings.Join(Kinds, ", "))
	}
	if !contains(Formats, o.Format) {
		return fmt.Errorf("unknown format %q: use one of %s", o.Format, strings.Join(Formats, ", "))
	}
	for _, b := range []struct{ name, v string }{{"from", o.From}, {"to", o.To}} {
		if _, err := parseBound(b.v); err != nil {
			return fmt.Errorf("parsing --%s: %w", b.name, err)
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// bound is a time limit: absolute epoch ns, or an offset from the start of
// the recording.
type bound struct {
	set      bool
	relative bool
	ns       int64
}

func parseBound(s string) (bound, error) {
	if s == "" {
		return bound{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return bound{set: true, ns: t.UnixNano()}, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "+")); err == nil {
		return bound{set: true, relative: true, ns: int64(d)}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return bound{set: true, ns: n * 1e6}, nil // epoch milliseconds, as in latency CSVs
	}
	return bound{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-25T01:26:43Z), a duration from the recording's start (5s), nor epoch milliseconds", s)
}
