package latency

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/clock"
)

// Clock names the clock a WindowSet's times are in.
type Clock string

const (
	// Realtime is wall-clock time, ns since the Unix epoch.
	Realtime Clock = "realtime"
	// Monotonic is CLOCK_MONOTONIC, the bundle's clock.
	Monotonic Clock = "monotonic"
)

// Window is a half-open interval [Start, End) in which latency exceeded the
// SLO, with what fell into it.
type Window struct {
	Start int64 `json:"start_ns"`
	End   int64 `json:"end_ns"`
	// Requests counts the slow requests (or slow source windows) merged in.
	Requests int `json:"requests"`
	// Worst is the highest latency among them.
	Worst time.Duration `json:"worst_ns"`
}

// WindowSet is the merged set of slow windows the merge step filters by:
// sorted, non-overlapping, each padded by Pad on both sides.
type WindowSet struct {
	Clock   Clock         `json:"clock"`
	Metric  Metric        `json:"-"`
	SLO     time.Duration `json:"slo_ns"`
	Pad     time.Duration `json:"pad_ns"`
	Windows []Window      `json:"-"`
}

// Builder collects slow intervals; Build merges them. Requests may come in
// any order.
type Builder struct {
	slo    time.Duration
	metric Metric
	pad    time.Duration
	clock  Clock
	spans  []Window
}

// NewBuilder returns a Builder that keeps requests whose metric exceeds slo,
// padding each window by pad on both sides.
func NewBuilder(slo time.Duration, metric Metric, pad time.Duration) *Builder {
	return &Builder{slo: slo, metric: metric, pad: pad, clock: Realtime}
}

// Add keeps r's interval if it was slow, and reports whether it was. The
// interval is when the broker owed the response: from the request's end
// (for service time, from when the connection was free) to the response's.
func (b *Builder) Add(r *Request) bool {
	if !r.Measured() {
		return false
	}
	l := r.Latency(b.metric)
	if l <= b.slo {
		return false
	}
	b.AddWindow(Window{Start: r.SlowSince(b.metric), End: r.ResponseEnd, Requests: 1, Worst: l})
	return true
}

// compactAt bounds the spans kept before overlapping ones are merged, so a
// long capture with many slow requests holds one span per slow window, not
// one per slow request.
const compactAt = 1 << 16

// AddWindow keeps a window known to be slow (from a window-list source).
func (b *Builder) AddWindow(w Window) {
	b.spans = append(b.spans, w)
	if len(b.spans) >= compactAt && len(b.spans)%compactAt == 0 {
		merged := mergeSpans(b.spans, 0)
		// Keep room to grow before the next compaction.
		b.spans = append(make([]Window, 0, len(merged)+compactAt), merged...)
	}
}

// mergeSpans sorts spans by start, widens each by pad and merges those
// that overlap or touch.
func mergeSpans(spans []Window, pad time.Duration) []Window {
	slices.SortFunc(spans, func(x, y Window) int {
		switch {
		case x.Start < y.Start:
			return -1
		case x.Start > y.Start:
			return 1
		}
		return 0
	})
	var out []Window
	for _, w := range spans {
		w.Start -= int64(pad)
		w.End += int64(pad)
		if n := len(out); n > 0 && w.Start <= out[n-1].End {
			last := &out[n-1]
			last.End = max(last.End, w.End)
			last.Requests += w.Requests
			last.Worst = max(last.Worst, w.Worst)
			continue
		}
		out = append(out, w)
	}
	return out
}

// Build sorts, pads and merges what was added. The Builder may be used on.
func (b *Builder) Build() *WindowSet {
	return &WindowSet{Clock: b.clock, Metric: b.metric, SLO: b.slo, Pad: b.pad,
		Windows: mergeSpans(slices.Clone(b.spans), b.pad)}
}

// Contains reports whether t lies in a window.
func (ws *WindowSet) Contains(t int64) bool {
	i, _ := slices.BinarySearchFunc(ws.Windows, t, func(w Window, t int64) int {
		switch {
		case w.End <= t:
			return -1
		case w.Start > t:
			return 1
		}
		return 0
	})
	return i < len(ws.Windows) && ws.Windows[i].Start <= t && t < ws.Windows[i].End
}

// Overlap returns how much of [start, end) lies in windows.
func (ws *WindowSet) Overlap(start, end int64) time.Duration {
	var d int64
	i, _ := slices.BinarySearchFunc(ws.Windows, start, func(w Window, t int64) int {
		if w.End <= t {
			return -1
		}
		return 1
	})
	for ; i < len(ws.Windows) && ws.Windows[i].Start < end; i++ {
		d += min(end, ws.Windows[i].End) - max(start, ws.Windows[i].Start)
	}
	return time.Duration(d)
}

// Total returns the summed length of the windows.
func (ws *WindowSet) Total() time.Duration {
	var d int64
	for _, w := range ws.Windows {
		d += w.End - w.Start
	}
	return time.Duration(d)
}

// ToMonotonic returns a copy in CLOCK_MONOTONIC, converted with the
// capture's clock mapping (package clock, kept in the bundle's meta.json).
func (ws *WindowSet) ToMonotonic(m clock.Mapping) *WindowSet {
	if ws.Clock == Monotonic {
		return ws
	}
	out := *ws
	out.Clock = Monotonic
	out.Windows = make([]Window, len(ws.Windows))
	for i, w := range ws.Windows {
		w.Start, w.End = m.ToMonotonic(w.Start), m.ToMonotonic(w.End)
		out.Windows[i] = w
	}
	return &out
}

// header is the first line of a window set's JSONL form.
type header struct {
	Clock  Clock  `json:"clock"`
	Metric string `json:"metric"`
	SLO    int64  `json:"slo_ns"`
	Pad    int64  `json:"pad_ns"`
}

// WriteJSONL writes a header line, then one window a line.
func (ws *WindowSet) WriteJSONL(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(header{ws.Clock, ws.Metric.String(), int64(ws.SLO), int64(ws.Pad)}); err != nil {
		return fmt.Errorf("write windows: %w", err)
	}
	for _, win := range ws.Windows {
		if err := enc.Encode(win); err != nil {
			return fmt.Errorf("write windows: %w", err)
		}
	}
	return bw.Flush()
}

// WriteCSV writes the windows with a comment line carrying the header.
func (ws *WindowSet) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# clock=%s metric=%s slo_ns=%d pad_ns=%d\n", ws.Clock, ws.Metric, int64(ws.SLO), int64(ws.Pad))
	fmt.Fprintln(bw, "start_ns,end_ns,requests,worst_ns")
	for _, win := range ws.Windows {
		fmt.Fprintf(bw, "%d,%d,%d,%d\n", win.Start, win.End, win.Requests, int64(win.Worst))
	}
	return bw.Flush()
}

// ReadWindowSet reads what WriteJSONL or WriteCSV wrote.
func ReadWindowSet(r io.Reader) (*WindowSet, error) {
	br := bufio.NewReader(r)
	first, err := br.Peek(1)
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	ws := &WindowSet{}
	var last int64 = -1 << 63
	add := func(w Window, line int) error {
		if w.End < w.Start || w.Start < last {
			return fmt.Errorf("read windows line %d: window [%d, %d) out of order or inverted", line, w.Start, w.End)
		}
		last = w.End
		ws.Windows = append(ws.Windows, w)
		return nil
	}
	setHeader := func(h header) error {
		m, err := ParseMetric(h.Metric)
		if err != nil {
			return err
		}
		if h.Clock != Realtime && h.Clock != Monotonic {
			return fmt.Errorf("unknown clock %q", h.Clock)
		}
		ws.Clock, ws.Metric, ws.SLO, ws.Pad = h.Clock, m, time.Duration(h.SLO), time.Duration(h.Pad)
		return nil
	}
	if first[0] == '{' {
		dec := json.NewDecoder(br)
		var h header
		if err := dec.Decode(&h); err != nil {
			return nil, fmt.Errorf("read windows header: %w", err)
		}
		if err := setHeader(h); err != nil {
			return nil, fmt.Errorf("read windows header: %w", err)
		}
		for line := 2; ; line++ {
			var w Window
			if err := dec.Decode(&w); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("read windows line %d: %w", line, err)
			}
			if err := add(w, line); err != nil {
				return nil, err
			}
		}
		return ws, nil
	}
	head, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "# ") {
		return nil, errors.New("read windows: neither lockscope's JSONL nor CSV window form")
	}
	var h header
	for _, kv := range strings.Fields(head[2:]) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "clock":
			h.Clock = Clock(v)
		case "metric":
			h.Metric = v
		case "slo_ns":
			h.SLO, _ = strconv.ParseInt(v, 10, 64)
		case "pad_ns":
			h.Pad, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if err := setHeader(h); err != nil {
		return nil, fmt.Errorf("read windows header: %w", err)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = 4
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read windows: %w", err)
		}
		if line == 2 {
			continue // column names
		}
		var v [4]int64
		for i, f := range rec {
			if v[i], err = strconv.ParseInt(f, 10, 64); err != nil {
				return nil, fmt.Errorf("read windows line %d: %w", line, err)
			}
		}
		if err := add(Window{Start: v[0], End: v[1], Requests: int(v[2]), Worst: time.Duration(v[3])}, line); err != nil {
			return nil, err
		}
	}
	return ws, nil
}
