package report

import (
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/offcpu"
	"gonum.org/v1/plot/vg"
)

// Files of a bundle the report reads besides those named in package bundle.
// They are package capture's outputs (capture.SummaryJSON and friends);
// capture imports this package, so the names are repeated here and a test
// keeps them equal.
const (
	SummaryJSON    = "summary.json"
	SummaryText    = "summary.txt"
	SlowFolded     = "slow.folded"
	BaselineFolded = "baseline.folded"
	BlameProfile   = "blame.pb.gz"
	BlameFolded    = "blame.folded"
)

// Report is everything report.html shows about one bundle.
type Report struct {
	Dir  string
	Meta bundle.Meta
	// Duration is the capture's length (End − Start).
	Duration time.Duration
	// SLO and Metric are those the windows were built with (a re-merge
	// may use another SLO than the capture's).
	SLO    time.Duration
	Metric string
	// Latency is nil when the bundle has no requests.
	Latency *Stats
	Windows []WindowRow
	// WindowsTotal is the summed length of the windows.
	WindowsTotal time.Duration
	Worst        []Slow
	Summary      *merge.Summary
	// SummaryText is merge's summary.txt as written, shown whole so that
	// what the page does not lay out in tables (blame chains) still shows.
	SummaryText string
	OffCPU      []StateRow
	// LatencyMap and OffCPUMaps are the heat maps as inline SVG.
	LatencyMap *Figure
	OffCPUMaps []*Figure
	// FSRecorded says the bundle has the filesystem lens's stream; FSMaps
	// are its heat maps (file operations, journal commits).
	FSRecorded bool
	FSMaps     []*Figure
	Profiles   []ProfileFile
	// FirstAt is when the first request or off-CPU interval ended, since
	// the capture's start: the sources start after the profiler does.
	FirstAt time.Duration
	Notes   []string

	// origin is the CLOCK_MONOTONIC time the time axes start at.
	origin int64
}

// WindowRow is one SLO-breach window, in time since the capture's start.
type WindowRow struct {
	Start, End time.Duration
	Requests   int
	Worst      time.Duration
}

// StateRow is off-CPU time of one scheduler state.
type StateRow struct {
	State     string
	Intervals int64
	Total     time.Duration
	// InWindows is the part of Total that overlapped the windows.
	InWindows time.Duration
	// SlowShare and BaseShare are the state's share of all off-CPU time
	// in the windows and outside them.
	SlowShare, BaseShare float64
}

// Figure is a rendered heat map.
type Figure struct {
	Title string
	SVG   template.HTML
	// Cells counts the non-empty cells drawn, Total what they hold.
	Cells int
	Total float64
}

// ProfileFile is an output of merge with the command that opens it.
type ProfileFile struct {
	Name, What, Command string
	Bytes               int64
}

// Options shape the report.
type Options struct {
	// Worst bounds the table of worst requests (default 20).
	Worst int
	// Cols is about how many time columns the heat maps have (default 120).
	Cols int
}

func (o *Options) defaults() {
	if o.Worst <= 0 {
		o.Worst = 20
	}
	if o.Cols <= 0 {
		o.Cols = 120
	}
}

// Build reads a merged bundle. ws are the windows merge used, in
// CLOCK_MONOTONIC (nil when the bundle has no latency); sum is what merge
// summarized (nil: read from summary.json when the bundle has one).
func Build(b *bundle.Bundle, ws *latency.WindowSet, sum *merge.Summary, o Options) (*Report, error) {
	o.defaults()
	m := b.Meta
	r := &Report{Dir: b.Dir, Meta: m, Duration: time.Duration(m.End - m.Start), Summary: sum, origin: m.Start}
	if r.Duration <= 0 {
		// A bundle made by hand or by another tool may not record its
		// span: the data's own span stands in, and the page says so.
		if err := r.dataSpan(b); err != nil {
			return nil, err
		}
		r.Notes = append(r.Notes, "meta.json records no capture span: the time axes start at the first request or off-CPU interval")
	}
	if m.Latency != nil {
		r.SLO, r.Metric = m.Latency.SLO, m.Latency.Kind
	}
	if ws != nil {
		r.SLO, r.Metric = ws.SLO, ws.Metric.String()
		for _, w := range ws.Windows {
			r.Windows = append(r.Windows, WindowRow{Start: time.Duration(w.Start - r.origin), End: time.Duration(w.End - r.origin), Requests: w.Requests, Worst: w.Worst})
		}
		r.WindowsTotal = ws.Total()
	}
	if r.Summary == nil && b.Has(SummaryJSON) {
		s, err := readSummary(b.Path(SummaryJSON))
		if err != nil {
			return nil, err
		}
		r.Summary = s
	}
	if b.Has(SummaryText) {
		t, err := os.ReadFile(b.Path(SummaryText))
		if err != nil {
			return nil, fmt.Errorf("building report: %w", err)
		}
		r.SummaryText = string(t)
	}
	if b.Has(bundle.RequestsFile) {
		if err := r.requests(b, ws, o); err != nil {
			return nil, err
		}
	} else if m.Latency != nil {
		r.Notes = append(r.Notes, "the bundle has no requests.jsonl: no latency heat map or request percentiles")
	}
	if b.Has(bundle.OffCPUFile) {
		if err := r.offCPU(b, ws, o); err != nil {
			return nil, err
		}
	}
	if b.Has(bundle.FSStreamFile) {
		if err := r.fs(b, o); err != nil {
			return nil, err
		}
	}
	r.losses()
	r.profiles(b)
	return r, nil
}

// losses adds the sources' non-zero loss counters to the notes: whatever a
// collector dropped is said where the reader looks, not only in meta.json.
func (r *Report) losses() {
	note := func(src string, c map[string]uint64) {
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			// These count what was seen, not what was lost (non_files:
			// socket and pipe writes the lens skips by design).
			if c[k] > 0 && k != "events" && k != "packets" && k != "journal_events" && k != "non_files" {
				r.Notes = append(r.Notes, fmt.Sprintf("%s counted %d %s", src, c[k], strings.ReplaceAll(k, "_", " ")))
			}
		}
	}
	if o := r.Meta.OffCPU; o != nil {
		note("the off-CPU collector", o.Counters)
	}
	if l := r.Meta.Latency; l != nil {
		note("the latency source ("+l.Source+")", l.Counters)
	}
	if f := r.Meta.FS; f != nil {
		note("the filesystem lens", f.Counters)
	}
}

// dataSpan sets the origin and duration from the requests and intervals.
func (r *Report) dataSpan(b *bundle.Bundle) error {
	var lo, hi int64
	see := func(t int64) {
		if lo == 0 || t < lo {
			lo = t
		}
		hi = max(hi, t)
	}
	if b.Has(bundle.RequestsFile) {
		f, err := os.Open(b.Path(bundle.RequestsFile))
		if err != nil {
			return fmt.Errorf("building report: %w", err)
		}
		defer f.Close()
		err = latency.ReadRequestsJSONL(f, func(q *latency.Request) error {
			if q.APIKey == latency.APIProduce && q.Measured() {
				see(b.Meta.Clock.ToMonotonic(q.ResponseEnd - int64(q.Wire)))
				see(b.Meta.Clock.ToMonotonic(q.ResponseEnd))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("building report: %s: %w", bundle.RequestsFile, err)
		}
	}
	if b.Has(bundle.OffCPUFile) {
		f, err := os.Open(b.Path(bundle.OffCPUFile))
		if err != nil {
			return fmt.Errorf("building report: %w", err)
		}
		defer f.Close()
		err = bundle.ReadOffCPU(f, func(iv *bundle.Interval) error {
			see(int64(iv.Start))
			see(int64(iv.End))
			return nil
		})
		if err != nil {
			return fmt.Errorf("building report: %s: %w", bundle.OffCPUFile, err)
		}
	}
	// One nanosecond past the last, so that it falls inside the last column.
	r.origin, r.Duration = lo, time.Duration(hi-lo+1)
	return nil
}

func (r *Report) first(at time.Duration) {
	if r.FirstAt == 0 || at < r.FirstAt {
		r.FirstAt = max(at, 1)
	}
}

func (r *Report) spans() []Span {
	out := make([]Span, len(r.Windows))
	for i, w := range r.Windows {
		out[i] = Span{w.Start, w.End}
	}
	return out
}

func (r *Report) requests(b *bundle.Bundle, ws *latency.WindowSet, o Options) error {
	metric, err := latency.ParseMetric(r.Metric)
	if err != nil {
		metric = latency.Service
	}
	f, err := os.Open(b.Path(bundle.RequestsFile))
	if err != nil {
		return fmt.Errorf("building report: %w", err)
	}
	defer f.Close()
	lat := Latencies{Metric: metric, SLO: r.SLO}
	worst := worstN{n: o.Worst}
	type point struct {
		at time.Duration
		d  time.Duration
	}
	var pts []point
	clk := b.Meta.Clock
	err = latency.ReadRequestsJSONL(f, func(q *latency.Request) error {
		lat.Add(q)
		if q.APIKey != latency.APIProduce || !q.Measured() {
			return nil
		}
		mono := clk.ToMonotonic(q.ResponseEnd)
		at := time.Duration(mono - r.origin)
		r.first(at)
		pts = append(pts, point{at, q.Latency(metric)})
		s := slowOf(q, metric, at)
		// In a window if the time it was owed overlaps one: its end alone
		// may sit on a window's (half-open) edge.
		s.InWindow = ws != nil && ws.Overlap(mono-int64(s.Latency), mono+1) > 0
		worst.add(s)
		return nil
	})
	if err != nil {
		return fmt.Errorf("building report: %s: %w", bundle.RequestsFile, err)
	}
	st := lat.Stats()
	r.Latency = &st
	r.Worst = worst.out
	if len(lat.Values) == 0 {
		r.Notes = append(r.Notes, "no produce request was measured: no latency heat map")
		return nil
	}
	lo, hi := lat.Values[0], lat.Values[len(lat.Values)-1]
	if r.SLO > 0 {
		lo, hi = min(lo, r.SLO), max(hi, r.SLO)
	}
	g := NewGrid(r.Duration, o.Cols, NewBuckets(lo, hi, 5))
	for _, p := range pts {
		g.Add(p.at, p.d, 1)
	}
	if g.Dropped > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d requests ended outside the capture's span and are not in the heat map", g.Dropped))
	}
	hm := &HeatMap{
		Title: fmt.Sprintf("Produce latency (%s), %s per column", metric, fmtDur(g.Bin)),
		Grid:  g, ZLabel: "requests a cell", SLO: r.SLO, Windows: r.spans(),
	}
	fig, err := figure(hm)
	if err != nil {
		return err
	}
	r.LatencyMap = fig
	return nil
}

// offCPU reads the intervals twice: once for the duration range, once into
// the grids. The stream is on disk, so this keeps memory flat.
func (r *Report) offCPU(b *bundle.Bundle, ws *latency.WindowSet, o Options) error {
	read := func(fn func(*bundle.Interval) error) error {
		f, err := os.Open(b.Path(bundle.OffCPUFile))
		if err != nil {
			return fmt.Errorf("building report: %w", err)
		}
		defer f.Close()
		if err := bundle.ReadOffCPU(f, fn); err != nil {
			return fmt.Errorf("building report: %s: %w", bundle.OffCPUFile, err)
		}
		return nil
	}
	type acc struct {
		n          int64
		total, win time.Duration
	}
	states := map[offcpu.State]*acc{}
	var lo, hi time.Duration
	err := read(func(iv *bundle.Interval) error {
		d := time.Duration(iv.End - iv.Start)
		a := states[iv.State]
		if a == nil {
			a = &acc{}
			states[iv.State] = a
		}
		a.n++
		a.total += d
		if ws != nil {
			a.win += ws.Overlap(int64(iv.Start), int64(iv.End))
		}
		if lo == 0 || d < lo {
			lo = d
		}
		hi = max(hi, d)
		return nil
	})
	if err != nil {
		return err
	}
	if len(states) == 0 {
		r.Notes = append(r.Notes, "offcpu.jsonl holds no interval")
		return nil
	}
	var slowAll, baseAll time.Duration
	for _, a := range states {
		slowAll += a.win
		baseAll += a.total - a.win
	}
	keys := make([]offcpu.State, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	// Uninterruptible first: disk and journal waits are what this tool
	// hunts; sleeping last, as most of it is idle threads.
	order := func(s offcpu.State) int {
		switch s {
		case offcpu.Uninterruptible:
			return 0
		case offcpu.Preempted:
			return 1
		case offcpu.Sleeping:
			return 2
		}
		return 3 + int(s)
	}
	sort.Slice(keys, func(i, j int) bool { return order(keys[i]) < order(keys[j]) })
	buckets := NewBuckets(lo, hi, 5)
	grids := map[offcpu.State]*Grid{}
	for _, k := range keys {
		a := states[k]
		row := StateRow{State: k.String(), Intervals: a.n, Total: a.total, InWindows: a.win}
		if slowAll > 0 {
			row.SlowShare = float64(a.win) / float64(slowAll)
		}
		if baseAll > 0 {
			row.BaseShare = float64(a.total-a.win) / float64(baseAll)
		}
		r.OffCPU = append(r.OffCPU, row)
		grids[k] = NewGrid(r.Duration, o.Cols, buckets)
	}
	err = read(func(iv *bundle.Interval) error {
		r.first(time.Duration(int64(iv.End) - r.origin))
		// An interval is placed where it ended, when its length is known.
		grids[iv.State].Add(time.Duration(int64(iv.End)-r.origin), time.Duration(iv.End-iv.Start), time.Duration(iv.End-iv.Start).Seconds())
		return nil
	})
	if err != nil {
		return err
	}
	// One colour scale for the states, so their maps can be compared.
	zmax := 0.0
	for _, g := range grids {
		zmax = max(zmax, g.Max())
	}
	for _, k := range keys {
		hm := &HeatMap{
			Title: fmt.Sprintf("Off-CPU time, %s (%d intervals ≥ the collector's minimum)", k, states[k].n),
			Grid:  grids[k], ZLabel: "seconds off-CPU a cell", ZMin: zmax / 1e3, ZMax: zmax, Windows: r.spans(),
			Height: 8 * vg.Centimeter,
		}
		fig, err := figure(hm)
		if err != nil {
			return err
		}
		r.OffCPUMaps = append(r.OffCPUMaps, fig)
	}
	return nil
}

// figure renders a heat map for inlining into HTML: the XML prolog and
// generator comment go, the <svg> element stays.
func figure(h *HeatMap) (*Figure, error) {
	svg, err := h.SVG()
	if err != nil {
		return nil, err
	}
	if i := indexSVG(svg); i > 0 {
		svg = svg[i:]
	}
	f := &Figure{Title: h.Title, SVG: template.HTML(svg), Total: h.Grid.Sum()}
	for _, v := range h.Grid.Z {
		if v > 0 {
			f.Cells++
		}
	}
	return f, nil
}

func indexSVG(b []byte) int {
	for i := 0; i+4 <= len(b); i++ {
		if string(b[i:i+4]) == "<svg" {
			return i
		}
	}
	return -1
}

func (r *Report) profiles(b *bundle.Bundle) {
	dir := b.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	q := shellQuote
	files := []ProfileFile{
		{Name: bundle.SlowProfile, What: "inside the SLO-breach windows, with the baseline as diff base: what grew when produce was slow",
			Command: "lockscope view " + q(dir) + "\n# or\ngo tool pprof -http=: -diff_base=" + q(filepath.Join(dir, bundle.BaselineProfile)) + " " + q(filepath.Join(dir, bundle.SlowProfile))},
		{Name: bundle.SlowProfile, What: "the slow windows alone",
			Command: "go tool pprof -http=: " + q(filepath.Join(dir, bundle.SlowProfile))},
		{Name: bundle.BaselineProfile, What: "outside the windows",
			Command: "go tool pprof -http=: " + q(filepath.Join(dir, bundle.BaselineProfile))},
		{Name: bundle.AllProfile, What: "the whole capture; samples carry a window label (slow or baseline)",
			Command: "go tool pprof -http=: -tagfocus=window=slow " + q(filepath.Join(dir, bundle.AllProfile))},
		{Name: BlameProfile, What: "lock waiting charged to what the lock's holders were doing meanwhile (blame)",
			Command: "go tool pprof -http=: -tagfocus=window=slow " + q(filepath.Join(dir, BlameProfile))},
		{Name: SlowFolded, What: "folded stacks of wall time in the windows, for flamegraph.pl, speedscope or Pyroscope",
			Command: "flamegraph.pl " + q(filepath.Join(dir, SlowFolded)) + " > slow.svg"},
		{Name: BlameFolded, What: "folded stacks of the blame in the windows (the whole capture when there are none)",
			Command: "flamegraph.pl " + q(filepath.Join(dir, BlameFolded)) + " > blame.svg"},
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(b.Dir, f.Name))
		if err != nil {
			continue
		}
		f.Bytes = st.Size()
		r.Profiles = append(r.Profiles, f)
	}
	if len(r.Profiles) == 0 {
		r.Notes = append(r.Notes, "the bundle has no merged profiles yet: run lockscope merge "+q(dir))
	}
}

// shellQuote quotes a path for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || slices.Contains([]rune("/._-+=:,@%"), c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, `'\''`...)
			continue
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// WriteBundle builds the report of a merged bundle and writes it to the
// bundle's report.html (through a temporary file, so a failure leaves any
// earlier report in place). It is what merge calls last.
func WriteBundle(b *bundle.Bundle, ws *latency.WindowSet, sum *merge.Summary) error {
	r, err := Build(b, ws, sum, Options{})
	if err != nil {
		return err
	}
	path := b.Path(bundle.ReportFile)
	f, err := os.CreateTemp(b.Dir, ".report-*.html")
	if err != nil {
		return fmt.Errorf("writing %s: %w", bundle.ReportFile, bundle.Hint(err))
	}
	werr := f.Chmod(0o644)
	if werr == nil {
		werr = r.WriteHTML(f)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", bundle.ReportFile, bundle.Hint(werr))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", bundle.ReportFile, err)
	}
	return nil
}
