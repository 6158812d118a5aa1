package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/merge"
)

// CompareOptions are the flags of lockscope compare.
type CompareOptions struct {
	// SLO overrides every input's own; inputs without one (request logs)
	// need it.
	SLO time.Duration
	// Kind is the latency compared: "wire" or "service"; empty keeps each
	// bundle's own and uses service time for files.
	Kind string
	// Top is how many causes of each list of each bundle are compared
	// (default 5).
	Top int
	// Cols is about how many time columns the heat maps have (default 120).
	Cols int
	// Format is the output: "text" (default), "json" or "html".
	Format string
	// Loc is the time zone of Kafka request logs (log4j writes local time
	// without a zone); nil means the local zone.
	Loc *time.Location
}

// Validate checks the options without reading any input.
func (o *CompareOptions) Validate() error {
	if o.SLO < 0 {
		return fmt.Errorf("compare: negative --slo %v", o.SLO)
	}
	if o.Kind != "" {
		if _, err := latency.ParseMetric(o.Kind); err != nil {
			return fmt.Errorf("compare: --latency-kind: %w", err)
		}
	}
	switch o.Format {
	case "", "text", "json", "html":
	default:
		return fmt.Errorf("compare: --format %q: want text, json or html", o.Format)
	}
	if o.Top < 0 || o.Cols < 0 {
		return fmt.Errorf("compare: negative --top or columns (%d, %d)", o.Top, o.Cols)
	}
	return nil
}

// Column is one compared input.
type Column struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Source is "bundle", "requests" (lockscope's requests.jsonl),
	// "requestlog" (Kafka's request log) or "csv" (a generic latency file).
	Source string        `json:"source"`
	SLO    time.Duration `json:"slo_ns"`
	Metric string        `json:"metric"`
	// Span is the time from the heat map's origin (the capture's start for
	// a bundle, the first response otherwise) to the last response.
	Span  time.Duration `json:"span_ns"`
	Stats Stats         `json:"stats"`
	// Windows counts the SLO-breach windows of the requests (unpadded).
	Windows int `json:"windows"`
	// Grid is the latency heat map's data, on the comparison's shared
	// scale.
	Grid    *Grid   `json:"grid"`
	Heatmap *Figure `json:"-"`
	// FS is what the bundle's filesystem lens found, when it ran.
	FS *FSColumn `json:"fs,omitempty"`
	// Verdict is the bundle's verdict's answer, when it has one.
	Verdict string `json:"verdict,omitempty"`
	hm      *HeatMap
	summary *merge.Summary
	spans   []Span
}

// FSColumn is one bundle's filesystem lens in a comparison: the log dir's
// filesystem, its journal, and how the requests over the SLO related to it.
type FSColumn struct {
	// Filesystem is the log dir's device's type and mount options.
	Filesystem string `json:"filesystem"`
	// Commits, CommitP99, CommitMax and LongCommits describe the jbd2
	// commits and ext4 fast commits on the log dir's device; LogForces
	// counts XFS log forces.
	Commits     int           `json:"commits"`
	CommitP99   time.Duration `json:"commit_p99_ns"`
	CommitMax   time.Duration `json:"commit_max_ns"`
	LongCommits int           `json:"long_commits"`
	LongCommit  time.Duration `json:"long_commit_ns"`
	LogForces   int           `json:"log_forces"`
	// SlowWithLongCommit and SlowWithSlowOp are the shares of requests
	// over the SLO that overlapped a long commit, or a slow operation on
	// their own partition's files; Within* the same for the others.
	SlowWithLongCommit   float64 `json:"slow_with_long_commit"`
	WithinWithLongCommit float64 `json:"within_with_long_commit"`
	SlowWithSlowOp       float64 `json:"slow_with_slow_op"`
	WithinWithSlowOp     float64 `json:"within_with_slow_op"`
	// SyncP99 is the worst p99 of a partition's fsync or fdatasync.
	SyncP99 time.Duration `json:"partition_sync_p99_ns"`
}

func fsColumn(s *merge.FSSummary) *FSColumn {
	if s == nil {
		return nil
	}
	o := s.Overlap
	ratio := func(n, of int) float64 {
		if of == 0 {
			return 0
		}
		return float64(n) / float64(of)
	}
	c := &FSColumn{LogForces: o.LogForces, LongCommit: s.LongCommit,
		SlowWithLongCommit: ratio(o.SlowLongCommit, o.Slow), WithinWithLongCommit: ratio(o.WithinLongCommit, o.Within),
		SlowWithSlowOp: ratio(o.SlowSlowOp, o.Slow), WithinWithSlowOp: ratio(o.WithinSlowOp, o.Within)}
	logDev := map[string]bool{}
	for _, d := range o.Devices {
		logDev[d] = true
	}
	for _, d := range s.Devices {
		if logDev[d.Dev] {
			c.Filesystem = d.FSType + " (" + d.Options + ")"
		}
	}
	for _, j := range s.Journal {
		if logDev[j.Dev] && (j.Kind == bundle.JournalJBD2Commit || j.Kind == bundle.JournalExt4FastCommit) {
			c.Commits += j.Count
			c.CommitP99, c.CommitMax = max(c.CommitP99, j.P99), max(c.CommitMax, j.Max)
			c.LongCommits += j.Long
		}
	}
	for _, f := range s.Files {
		if f.Kind == "log" && (f.Op == "fsync" || f.Op == "fdatasync") {
			c.SyncP99 = max(c.SyncP99, f.P99)
		}
	}
	return c
}

// CauseRow is one cause and its share of the slow windows in each input
// (nil where the input's summary does not list it).
type CauseRow struct {
	// List is "lock", "blame", "kernel", "offcpu" or "wall": which
	// ranking of the summary the cause comes from.
	List   string     `json:"list"`
	Name   string     `json:"name"`
	Shares []*float64 `json:"shares"`
}

// Comparison is lockscope compare's result.
type Comparison struct {
	Columns []*Column  `json:"columns"`
	Causes  []CauseRow `json:"causes"`
	// ZMax is the shared colour scale's top: the fullest cell of all maps.
	ZMax float64 `json:"zmax"`
}

// point is one measured produce request: its response's end (wall-clock ns)
// and latency.
type point struct {
	end int64
	lat time.Duration
}

// Compare reads the inputs (bundle directories, requests.jsonl files, Kafka
// request logs or generic latency files; a "requestlog:", "csv:" or
// "requests:" prefix names a file's kind when sniffing its first line is
// not wanted) and lays them side by side.
func Compare(args []string, o CompareOptions) (*Comparison, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(args) < 1 {
		return nil, errors.New("compare: nothing to compare: give two or more bundles or request logs")
	}
	if o.Top == 0 {
		o.Top = 5
	}
	if o.Cols == 0 {
		o.Cols = 120
	}
	if o.Loc == nil {
		o.Loc = time.Local
	}
	cmp := &Comparison{}
	pts := make([][]point, len(args))
	for i, arg := range args {
		col, p, err := readInput(arg, o)
		if err != nil {
			return nil, err
		}
		cmp.Columns = append(cmp.Columns, col)
		pts[i] = p
	}
	nameColumns(cmp.Columns)

	// One scale for all: the same buckets (all latencies and SLOs), the
	// same column width and time axis (the longest span), the same colours.
	var lo, hi, span time.Duration
	for i, c := range cmp.Columns {
		for _, p := range pts[i] {
			if lo == 0 || p.lat < lo {
				lo = p.lat
			}
			hi = max(hi, p.lat)
		}
		if c.SLO > 0 {
			lo, hi = min(lo, c.SLO), max(hi, c.SLO)
			if lo == 0 {
				lo = c.SLO
			}
		}
		span = max(span, c.Span)
	}
	if span <= 0 {
		span = time.Second
	}
	b := NewBuckets(lo, hi, 5)
	for i, c := range cmp.Columns {
		c.Grid = NewGrid(span, o.Cols, b)
		for _, p := range pts[i] {
			c.Grid.Add(time.Duration(p.end), p.lat, 1)
		}
		cmp.ZMax = max(cmp.ZMax, c.Grid.Max())
	}
	for _, c := range cmp.Columns {
		hm := &HeatMap{
			Title: fmt.Sprintf("%s: produce latency (%s), %s per column", c.Name, c.Metric, fmtDur(c.Grid.Bin)),
			Grid:  c.Grid, ZLabel: "requests a cell", ZMax: cmp.ZMax, SLO: c.SLO, Windows: c.spans, XMax: span,
		}
		if c.Source != "bundle" {
			hm.XLabel = "seconds since the first response"
		}
		c.hm = hm
		if c.Stats.Requests == 0 {
			continue
		}
		fig, err := figure(hm)
		if err != nil {
			return nil, err
		}
		c.Heatmap = fig
	}
	cmp.causes(o.Top)
	return cmp, nil
}

// readInput reads one input. The points' end times are returned relative to
// the column's origin.
func readInput(arg string, o CompareOptions) (*Column, []point, error) {
	kind, path := "", arg
	if k, p, ok := strings.Cut(arg, ":"); ok && (k == "requestlog" || k == "csv" || k == "requests") {
		kind, path = k, p
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("compare: %w", err)
	}
	col := &Column{Path: path}
	slo, metricName := o.SLO, o.Kind
	var origin int64
	var reqFile string
	if st.IsDir() {
		if kind != "" {
			return nil, nil, fmt.Errorf("compare: %s is a directory, not a %s file", path, kind)
		}
		b, err := bundle.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("compare: %w", err)
		}
		if !b.Has(bundle.RequestsFile) {
			return nil, nil, fmt.Errorf("compare: bundle %s has no %s: it was captured without a latency source", path, bundle.RequestsFile)
		}
		col.Source, reqFile = "bundle", b.Path(bundle.RequestsFile)
		if l := b.Meta.Latency; l != nil {
			if slo == 0 {
				slo = l.SLO
			}
			if metricName == "" {
				metricName = l.Kind
			}
		}
		origin = b.Meta.Clock.ToRealtime(b.Meta.Start)
		if b.Has(SummaryJSON) {
			if col.summary, err = readSummary(b.Path(SummaryJSON)); err != nil {
				return nil, nil, err
			}
			col.FS = fsColumn(col.summary.FS)
			if v := col.summary.Verdict; v != nil {
				col.Verdict = v.Answer
			}
		}
	} else {
		if kind == "" {
			if kind, err = sniffKind(path); err != nil {
				return nil, nil, err
			}
		}
		col.Source, reqFile = kind, path
	}
	if slo == 0 {
		return nil, nil, fmt.Errorf("compare: %s records no SLO: give one with --slo", arg)
	}
	if metricName == "" {
		metricName = "service"
	}
	metric, err := latency.ParseMetric(metricName)
	if err != nil {
		return nil, nil, fmt.Errorf("compare: %s: %w", arg, err)
	}
	col.SLO, col.Metric = slo, metric.String()

	lat := Latencies{Metric: metric, SLO: slo}
	wb := latency.NewBuilder(slo, metric, 0)
	var pts []point
	add := func(r *latency.Request) error {
		lat.Add(r)
		if r.APIKey == latency.APIProduce && r.Measured() {
			pts = append(pts, point{r.ResponseEnd, r.Latency(metric)})
			wb.Add(r)
		}
		return nil
	}
	f, err := os.Open(reqFile)
	if err != nil {
		return nil, nil, fmt.Errorf("compare: %w", err)
	}
	defer f.Close()
	switch col.Source {
	case "bundle", "requests":
		err = latency.ReadRequestsJSONL(f, add)
	case "requestlog":
		var ls latency.LogStats
		ls, err = latency.ReadRequestLog(f, o.Loc, add)
		if err == nil && ls.Requests == 0 {
			err = fmt.Errorf("no completed request in %d lines (is the log at DEBUG for kafka.request.logger?)", ls.Lines)
		}
	case "csv":
		err = latency.ReadGeneric(f, func(r *latency.Request) error {
			r.APIKey = latency.APIProduce
			return add(r)
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("compare: reading %s: %w", reqFile, err)
	}
	col.Stats = lat.Stats()
	if origin == 0 {
		origin = lat.First
	}
	for i := range pts {
		pts[i].end -= origin
		col.Span = max(col.Span, time.Duration(pts[i].end))
	}
	ws := wb.Build()
	col.Windows = len(ws.Windows)
	for _, w := range ws.Windows {
		col.spans = append(col.spans, Span{time.Duration(w.Start - origin), time.Duration(w.End - origin)})
	}
	return col, pts, nil
}

// sniffKind tells a file's kind from its first non-empty line: Kafka's
// request log starts with a "[date]", lockscope's requests.jsonl with an
// object holding a "status", anything else is read as a generic latency
// file (CSV or JSONL).
func sniffKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("compare: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		switch {
		case len(line) == 0:
			continue
		case line[0] == '[':
			return "requestlog", nil
		case line[0] == '{' && bytes.Contains(line, []byte(`"status"`)) && bytes.Contains(line, []byte(`"api_key"`)):
			return "requests", nil
		}
		return "csv", nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("compare: reading %s: %w", path, err)
	}
	return "", fmt.Errorf("compare: %s is empty", path)
}

// nameColumns names each input by its base name, or by its path where two
// base names collide.
func nameColumns(cols []*Column) {
	seen := map[string]int{}
	for _, c := range cols {
		seen[filepath.Base(filepath.Clean(c.Path))]++
	}
	for _, c := range cols {
		c.Name = filepath.Base(filepath.Clean(c.Path))
		if seen[c.Name] > 1 {
			c.Name = c.Path
		}
	}
}

// causes lists the union of each bundle's top causes with every bundle's
// share of each.
func (cmp *Comparison) causes(top int) {
	type key struct{ list, name string }
	// ranked returns a summary's lists in their order, and every cause's
	// share of the slow windows.
	ranked := func(s *merge.Summary) (map[string][]key, map[key]float64) {
		order, shares := map[string][]key{}, map[key]float64{}
		add := func(list, name string, share float64) {
			k := key{list, name}
			if _, dup := shares[k]; !dup {
				order[list] = append(order[list], k)
			}
			shares[k] += share
		}
		if v := s.Verdict; v != nil {
			for _, f := range v.Findings {
				add("verdict", f.Name(), f.Share)
			}
		}
		if p := s.Phases; p != nil && p.Slow.Total > 0 {
			for i, n := range merge.PhaseNames {
				if i < len(p.Slow.Mean) && p.Slow.Mean[i] > 0 {
					add("phase", n, float64(p.Slow.Mean[i])/float64(p.Slow.Total))
				}
			}
		}
		for _, l := range s.LockHotSpots {
			add("lock", l.Frame+" on "+lockClass(l.Class), l.Slow)
		}
		for _, c := range s.BlameChains {
			holder := c.Holder
			if holder == "" {
				holder = "no known holder"
			}
			add("blame", fmt.Sprintf("%s on %s ← %s: %s", c.Site, lockClass(c.Class), holder, strings.Join(c.Activity, " → ")), c.Share)
		}
		for _, f := range s.KernelCauses {
			add("kernel", strings.TrimSuffix(f.Frame, "_[k]"), f.Slow)
		}
		for _, f := range s.TopOffCPUFrames {
			add("offcpu", f.Frame, f.Slow)
		}
		for _, f := range s.TopFrames {
			add("wall", f.Frame, f.Slow)
		}
		return order, shares
	}
	orders := make([]map[string][]key, len(cmp.Columns))
	shares := make([]map[key]float64, len(cmp.Columns))
	for i, c := range cmp.Columns {
		if c.summary != nil {
			orders[i], shares[i] = ranked(c.summary)
		}
	}
	share := func(i int, k key) *float64 {
		v, ok := shares[i][k]
		if !ok {
			return nil
		}
		return &v
	}
	var keys []key
	seen := map[key]bool{}
	for _, list := range causeLists {
		for i := range cmp.Columns {
			ks := orders[i][list]
			for _, k := range ks[:min(top, len(ks))] {
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	for _, k := range keys {
		row := CauseRow{List: k.list, Name: k.name}
		for i := range cmp.Columns {
			row.Shares = append(row.Shares, share(i, k))
		}
		cmp.Causes = append(cmp.Causes, row)
	}
}

func lockClass(c string) string {
	if c == "" {
		return "unknown lock"
	}
	return c
}

// causeLists orders the lists of causes as the report does.
var causeLists = []string{"verdict", "phase", "lock", "blame", "kernel", "offcpu", "wall"}

var listNames = map[string]string{
	"verdict": "Verdict (share of the slow windows' excess waiting)",
	"phase":   "Phases of the slow produce requests in the broker (share of their time, from its request log)",
	"lock":    "Lock hot spots (share of lock wait time in the slow windows)",
	"blame":   "Blame chains (share of the lock site's waiting charged to what the holder did)",
	"kernel":  "Kernel causes (share of off-CPU time in the slow windows)",
	"offcpu":  "Where blocked threads waited (share of off-CPU time in the slow windows)",
	"wall":    "Top frames (share of wall time in the slow windows)",
}

func fmtShare(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100**p)
}

// Write writes the comparison in the format the options name.
func (cmp *Comparison) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		return cmp.WriteJSON(w)
	case "html":
		return cmp.WriteHTML(w)
	}
	return cmp.WriteText(w)
}

// HasFS reports whether any input has the filesystem lens.
func (cmp *Comparison) HasFS() bool {
	for _, c := range cmp.Columns {
		if c.FS != nil {
			return true
		}
	}
	return false
}

// WriteText writes the comparison as aligned tables.
func (cmp *Comparison) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(c *Column) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, c := range cmp.Columns {
			fmt.Fprintf(tw, "%s\t", f(c))
		}
		fmt.Fprintln(tw)
	}
	row("", func(c *Column) string { return c.Name })
	row("source", func(c *Column) string { return c.Source })
	row("latency", func(c *Column) string { return c.Metric })
	row("SLO", func(c *Column) string { return fmtDur(c.SLO) })
	row("requests", func(c *Column) string { return fmt.Sprint(c.Stats.Requests) })
	row("p50", func(c *Column) string { return fmtDur(c.Stats.P50) })
	row("p99", func(c *Column) string { return fmtDur(c.Stats.P99) })
	row("p99.9", func(c *Column) string { return fmtDur(c.Stats.P999) })
	row("max", func(c *Column) string { return fmtDur(c.Stats.Max) })
	row("over the SLO", func(c *Column) string { return fmt.Sprint(c.Stats.OverSLO) })
	row("share over the SLO", func(c *Column) string { return fmt.Sprintf("%.2f%%", 100*c.Stats.Share) })
	row("slow windows", func(c *Column) string { return fmt.Sprint(c.Windows) })
	if cmp.HasFS() {
		fs := func(f func(*FSColumn) string) func(c *Column) string {
			return func(c *Column) string {
				if c.FS == nil {
					return "—"
				}
				return f(c.FS)
			}
		}
		pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
		row("log dir filesystem", fs(func(f *FSColumn) string { return strings.SplitN(f.Filesystem, " ", 2)[0] }))
		row("journal commits", fs(func(f *FSColumn) string { return fmt.Sprint(f.Commits) }))
		row("commit p99 / max", fs(func(f *FSColumn) string {
			if f.Commits == 0 {
				return "—"
			}
			return fmtDur(f.CommitP99) + " / " + fmtDur(f.CommitMax)
		}))
		row("XFS log forces", fs(func(f *FSColumn) string { return fmt.Sprint(f.LogForces) }))
		row("partition sync p99", fs(func(f *FSColumn) string { return fmtDur(f.SyncP99) }))
		row("over-SLO with long commit", fs(func(f *FSColumn) string {
			return pct(f.SlowWithLongCommit) + " (within " + pct(f.WithinWithLongCommit) + ")"
		}))
		row("over-SLO with slow own-partition op", fs(func(f *FSColumn) string {
			return pct(f.SlowWithSlowOp) + " (within " + pct(f.WithinWithSlowOp) + ")"
		}))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(cmp.Columns) > 1 && cmp.Columns[0].Stats.OverSLO > 0 {
		base := cmp.Columns[0]
		for _, c := range cmp.Columns[1:] {
			if c.Stats.Requests == 0 {
				continue
			}
			switch d := ShareChange(base.Stats, c.Stats); {
			case d == 0:
				fmt.Fprintf(w, "%s: the same share of its requests over the SLO as %s\n", c.Name, base.Name)
			case d < 0:
				fmt.Fprintf(w, "%s: %.0f%% fewer of its requests over the SLO than %s\n", c.Name, -100*d, base.Name)
			default:
				fmt.Fprintf(w, "%s: %.0f%% more of its requests over the SLO than %s\n", c.Name, 100*d, base.Name)
			}
		}
	}
	for _, c := range cmp.Columns {
		if c.Verdict != "" {
			fmt.Fprintf(w, "%s: %s\n", c.Name, c.Verdict)
		}
	}
	// Causes: names left-aligned, shares in fixed-width cells.
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	list := ""
	for _, r := range cmp.Causes {
		if r.List != list {
			list = r.List
			fmt.Fprintf(tw, "\n%s\n", listNames[list])
		}
		fmt.Fprintf(tw, "  %s\t", r.Name)
		for _, s := range r.Shares {
			fmt.Fprintf(tw, "%7s\t", fmtShare(s))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// WriteJSON writes the comparison as JSON (the grids' cells included, as
// rows of counts per column).
func (cmp *Comparison) WriteJSON(w io.Writer) error {
	type gridJSON struct {
		*Grid
		// Cells are compact, a column a line would be thousands of lines.
		Cells []json.RawMessage `json:"cells"`
	}
	type colJSON struct {
		*Column
		Grid gridJSON `json:"grid"`
	}
	out := struct {
		Columns []colJSON  `json:"columns"`
		Causes  []CauseRow `json:"causes"`
		ZMax    float64    `json:"zmax"`
	}{Causes: cmp.Causes, ZMax: cmp.ZMax}
	for _, c := range cmp.Columns {
		g := gridJSON{Grid: c.Grid}
		for i := 0; i < c.Grid.Cols; i++ {
			b, err := json.Marshal(c.Grid.Z[i*c.Grid.Buckets.Rows : (i+1)*c.Grid.Buckets.Rows])
			if err != nil {
				return fmt.Errorf("writing comparison: %w", err)
			}
			g.Cells = append(g.Cells, b)
		}
		out.Columns = append(out.Columns, colJSON{Column: c, Grid: g})
	}
	if out.Causes == nil {
		out.Causes = []CauseRow{}
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	if err := e.Encode(out); err != nil {
		return fmt.Errorf("writing comparison: %w", err)
	}
	return nil
}

// WriteHTML writes the comparison as a self-contained page.
func (cmp *Comparison) WriteHTML(w io.Writer) error {
	if err := pages.ExecuteTemplate(w, "compare.html", cmp); err != nil {
		return fmt.Errorf("writing comparison: %w", err)
	}
	return nil
}

// WriteHeatmaps writes each input's heat map, on the shared scale, as
// NAME.svg and NAME.png into dir (created if missing) and returns the
// files' paths.
func (cmp *Comparison) WriteHeatmaps(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("writing heat maps: %w", bundle.Hint(err))
	}
	var out []string
	for i, c := range cmp.Columns {
		if c.hm == nil || c.Stats.Requests == 0 {
			continue
		}
		name := fmt.Sprintf("%02d-%s", i+1, strings.Map(func(r rune) rune {
			if r == '/' || r == os.PathSeparator || r == ' ' {
				return '_'
			}
			return r
		}, strings.Trim(c.Name, "/")))
		for _, ext := range []string{".svg", ".png"} {
			var b []byte
			var err error
			if ext == ".svg" {
				b, err = c.hm.SVG()
			} else {
				b, err = c.hm.PNG()
			}
			if err != nil {
				return out, err
			}
			p := filepath.Join(dir, name+ext)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return out, fmt.Errorf("writing heat maps: %w", bundle.Hint(err))
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// ShareChange is (b − a)/a of the shares over the SLO, NaN when a is 0.
func ShareChange(a, b Stats) float64 {
	if a.Share == 0 {
		return math.NaN()
	}
	return (b.Share - a.Share) / a.Share
}
