package merge

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/fslens"
	"github.com/lockscope/lockscope/internal/latency"
)

// FSRequest is one measured produce request as the filesystem summary needs
// it: when it was slow-eligible (CLOCK_MONOTONIC ns, from when its latency
// started counting to its response) and whether it broke the SLO.
type FSRequest struct {
	Start, End int64
	OverSLO    bool
	// Partitions are the request's topic-partitions ("orders-3").
	Partitions []string
}

// FSOptions tune SummarizeFS.
type FSOptions struct {
	// LongCommit is the journal commit length that counts as a stall
	// (default 50ms; a capture's merge uses half the SLO).
	LongCommit time.Duration
	// Top bounds the lists (default 10).
	Top int
	// Threads names threads by OS thread id (Result.Threads): the lens
	// knows only the kernel's truncated names.
	Threads map[uint32]string
}

// FSSummary relates the filesystem lens to the produce requests: which
// files and partitions took the I/O time, how long the journal took to
// commit, and how often a request over the SLO overlapped a long commit or
// a slow write compared with requests within it.
type FSSummary struct {
	Min     time.Duration     `json:"min_ns"`
	Devices []bundle.FSDevice `json:"devices,omitempty"`
	// Files are the target's file operations grouped by topic-partition (or
	// file outside partitions) and operation, most total time first.
	Files []FSFileStat `json:"files"`
	// Journal is the journal activity per device and kind.
	Journal []FSJournalStat `json:"journal"`
	// LongCommit is FSOptions.LongCommit; Overlap counts against it.
	LongCommit time.Duration `json:"long_commit_ns"`
	Overlap    FSOverlap     `json:"overlap"`
	// Slowest are the slowest operations, each with the journal event of
	// its device that overlapped it most.
	Slowest  []FSSlowOp `json:"slowest"`
	Sentence string     `json:"sentence"`
}

// FSFileStat is one group of operations. Count, Total and the percentiles
// come from the in-kernel histograms (every operation); the percentiles are
// interpolated inside log2 buckets (fslens.Histogram.Quantile), or exact
// when every operation was over the threshold and so recorded. Slow counts the operations over
// the lens's threshold, SlowInWindows those that overlapped an SLO-breach
// window.
type FSFileStat struct {
	Group         string        `json:"group"`
	Kind          string        `json:"kind"`
	Op            string        `json:"op"`
	Count         uint64        `json:"count"`
	Total         time.Duration `json:"total_ns"`
	P50           time.Duration `json:"p50_ns"`
	P99           time.Duration `json:"p99_ns"`
	Max           time.Duration `json:"max_ns"`
	Slow          int           `json:"slow"`
	SlowInWindows int           `json:"slow_in_windows"`
	Bytes         int64         `json:"slow_bytes"`
}

// FSJournalStat is the journal activity of one kind on one device.
type FSJournalStat struct {
	Dev   string        `json:"dev"`
	Mount string        `json:"mount,omitempty"`
	Kind  string        `json:"kind"`
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	// Long counts events of at least FSSummary.LongCommit.
	Long int `json:"long"`
}

// FSOverlap compares requests over the SLO with those within it: how many
// overlapped a journal commit (or log force) of at least LongCommit on a
// device holding the partitions' log segments, and how many overlapped a
// slow operation (over the lens's threshold) on a file of one of their own
// topic-partitions (any file of the broker when the latency source does not
// know partitions). A cause shows as a share much larger over the SLO than
// within it.
type FSOverlap struct {
	Devices []string `json:"devices"`
	// Commits counts the jbd2 commits and ext4 fast commits on those
	// devices, LogForces the XFS log forces: instants, which have no length
	// to compare.
	Commits          int `json:"commits"`
	LogForces        int `json:"log_forces"`
	Slow             int `json:"slow_requests"`
	SlowLongCommit   int `json:"slow_with_long_commit"`
	SlowSlowOp       int `json:"slow_with_slow_op"`
	Within           int `json:"within_requests"`
	WithinLongCommit int `json:"within_with_long_commit"`
	WithinSlowOp     int `json:"within_with_slow_op"`
	// Partitioned says the requests named their topic-partitions (Kafka
	// sources); without them (a CSV, a server's log) a request is related
	// to any slow operation of the target.
	Partitioned bool `json:"partitioned"`
}

// FSSlowOp is one slow operation and the journal event that overlapped it.
type FSSlowOp struct {
	Op        string        `json:"op"`
	Thread    string        `json:"thread"`
	TID       uint32        `json:"tid"`
	Group     string        `json:"group"`
	Path      string        `json:"path,omitempty"`
	Bytes     int64         `json:"bytes"`
	Start     int64         `json:"start_ns"`
	Duration  time.Duration `json:"duration_ns"`
	InWindow  bool          `json:"in_window"`
	Journal   string        `json:"journal,omitempty"`
	JournalTx uint32        `json:"journal_transaction,omitempty"`
	JournalNs time.Duration `json:"journal_ns,omitempty"`
	// LogForces counts the XFS log forces on the file's device during the
	// operation.
	LogForces int `json:"log_forces,omitempty"`
}

// groupName is the group a file's operations are summed in: its
// topic-partition; for files of no known kind outside partitions (a
// neighbour's files, the profiler's) their directory, or their device when
// they could not be resolved, so that many such files make one line; else
// the file.
func groupName(f *bundle.FSFileInfo) string {
	if f != nil && f.TopicPartition() == "" && fileKind(f) == "other" {
		if f.Path != "" {
			return filepath.Join(filepath.Dir(f.Path), "*")
		}
		// Files gone before they could be named (a checkpoint's
		// temporary, renamed over and replaced): one line per device.
		return "(files gone before resolved) dev " + f.Dev
	}
	return fslens.GroupName(f)
}

func fileKind(f *bundle.FSFileInfo) string {
	if f == nil || f.Kind == "" {
		return "other"
	}
	return f.Kind
}

// SummarizeFS summarizes a filesystem stream against the requests and the
// SLO windows (CLOCK_MONOTONIC; nil when there are none). It is pure.
func SummarizeFS(d *bundle.FSData, meta *bundle.FS, reqs []FSRequest, windows *latency.WindowSet, o FSOptions) *FSSummary {
	var ws spanSet
	if windows != nil {
		for _, w := range windows.Windows {
			ws.spans = append(ws.spans, span{w.Start, w.End})
		}
	}
	ws.build()
	if o.LongCommit <= 0 {
		o.LongCommit = 50 * time.Millisecond
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	s := &FSSummary{LongCommit: o.LongCommit, Files: []FSFileStat{}, Journal: []FSJournalStat{}, Slowest: []FSSlowOp{}}
	if meta != nil {
		s.Min, s.Devices = meta.Min, meta.Devices
	}
	mounts := map[string]string{}
	for _, dev := range s.Devices {
		mounts[dev.Dev] = dev.MountPoint
	}

	// Files: histograms give every operation, slow ops the detail.
	type key struct{ group, kind, op string }
	type acc struct {
		st    FSFileStat
		h     fslens.Histogram
		exact []time.Duration // the slow operations' latencies
	}
	stats := map[key]*acc{}
	get := func(f *bundle.FSFileInfo, op string) *acc {
		k := key{groupName(f), fileKind(f), op}
		a := stats[k]
		if a == nil {
			a = &acc{st: FSFileStat{Group: k.group, Kind: k.kind, Op: op}}
			stats[k] = a
		}
		return a
	}
	logDevs := map[string]bool{}
	for i := range d.Histograms {
		h := &d.Histograms[i]
		a := get(h.File, h.Op)
		hh := fslens.FromBundleHistogram(h)
		a.h.Add(&hh)
		if h.File != nil && h.File.Kind == "log" && h.File.Dev != "" {
			logDevs[h.File.Dev] = true
		}
	}
	for i := range d.Ops {
		op := &d.Ops[i]
		a := get(op.File, op.Op)
		a.st.Slow++
		a.exact = append(a.exact, op.Duration())
		a.st.Bytes += max(op.Bytes, 0)
		a.st.Max = max(a.st.Max, op.Duration())
		if ws.overlaps(int64(op.Start), int64(op.End)) {
			a.st.SlowInWindows++
		}
		if op.File != nil && op.File.Kind == "log" && op.File.Dev != "" {
			logDevs[op.File.Dev] = true
		}
	}
	for _, a := range stats {
		st := &a.st
		st.Count, st.Total = a.h.Count, time.Duration(a.h.SumNs)
		st.P50, st.P99 = a.h.Quantile(0.50), a.h.Quantile(0.99)
		if uint64(len(a.exact)) >= a.h.Count && len(a.exact) > 0 {
			// Every operation was recorded one by one (syncs usually
			// are): exact percentiles rather than log2 buckets.
			slices.Sort(a.exact)
			st.P50, st.P99 = nearestRank(a.exact, 0.50), nearestRank(a.exact, 0.99)
		}
		st.Max = max(st.Max, time.Duration(a.h.MaxNs))
		s.Files = append(s.Files, *st)
	}
	slices.SortFunc(s.Files, func(a, b FSFileStat) int {
		return cmp.Or(cmp.Compare(b.Total+time.Duration(b.Slow), a.Total+time.Duration(a.Slow)), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Op, b.Op))
	})

	// Journal per device and kind.
	type jkey struct{ dev, kind string }
	jd := map[jkey][]time.Duration{}
	for i := range d.Journal {
		j := &d.Journal[i]
		k := jkey{j.Dev, j.Kind}
		jd[k] = append(jd[k], j.Duration())
	}
	for k, ds := range jd {
		slices.Sort(ds)
		st := FSJournalStat{Dev: k.dev, Mount: mounts[k.dev], Kind: k.kind, Count: len(ds),
			P50: nearestRank(ds, 0.50), P99: nearestRank(ds, 0.99), Max: ds[len(ds)-1]}
		for _, v := range ds {
			if v >= o.LongCommit {
				st.Long++
			}
		}
		s.Journal = append(s.Journal, st)
	}
	slices.SortFunc(s.Journal, func(a, b FSJournalStat) int {
		return cmp.Or(cmp.Compare(a.Dev, b.Dev), cmp.Compare(a.Kind, b.Kind))
	})

	// Overlap of requests with long commits on the log devices (every
	// device with commits when no segment was resolved) and with slow
	// operations of the target.
	var long, slowOps spanSet
	// A request's own partitions' slow operations: what its append waited
	// for, if the write or sync was on its path.
	partOps := map[string]*spanSet{}
	for i := range d.Journal {
		j := &d.Journal[i]
		if len(logDevs) > 0 && !logDevs[j.Dev] {
			continue
		}
		switch j.Kind {
		case bundle.JournalXFSLogForce:
			s.Overlap.LogForces++
			continue
		case bundle.JournalJBD2Commit, bundle.JournalExt4FastCommit:
			s.Overlap.Commits++
		default:
			continue
		}
		if j.Duration() >= o.LongCommit {
			long.spans = append(long.spans, span{int64(j.Start), int64(j.End)})
		}
	}
	for i := range d.Ops {
		op := &d.Ops[i]
		slowOps.spans = append(slowOps.spans, span{int64(op.Start), int64(op.End)})
		if tp := op.File.TopicPartition(); tp != "" {
			ps := partOps[tp]
			if ps == nil {
				ps = &spanSet{}
				partOps[tp] = ps
			}
			ps.spans = append(ps.spans, span{int64(op.Start), int64(op.End)})
		}
	}
	long.build()
	slowOps.build()
	for _, ps := range partOps {
		ps.build()
	}
	for dev := range logDevs {
		s.Overlap.Devices = append(s.Overlap.Devices, dev)
	}
	slices.Sort(s.Overlap.Devices)
	for _, r := range reqs {
		c, w := long.overlaps(r.Start, r.End), false
		if len(r.Partitions) == 0 {
			// A source without partitions (a generic latency file):
			// any slow operation of the broker.
			w = slowOps.overlaps(r.Start, r.End)
		}
		s.Overlap.Partitioned = s.Overlap.Partitioned || len(r.Partitions) > 0
		for _, tp := range r.Partitions {
			if ps := partOps[tp]; ps != nil && ps.overlaps(r.Start, r.End) {
				w = true
				break
			}
		}
		if r.OverSLO {
			s.Overlap.Slow++
			s.Overlap.SlowLongCommit += b2i(c)
			s.Overlap.SlowSlowOp += b2i(w)
		} else {
			s.Overlap.Within++
			s.Overlap.WithinLongCommit += b2i(c)
			s.Overlap.WithinSlowOp += b2i(w)
		}
	}

	// The slowest operations with the journal event that overlapped each.
	ops := make([]*bundle.FSOp, len(d.Ops))
	for i := range d.Ops {
		ops[i] = &d.Ops[i]
	}
	slices.SortFunc(ops, func(a, b *bundle.FSOp) int { return cmp.Compare(b.Duration(), a.Duration()) })
	for _, op := range ops[:min(len(ops), o.Top)] {
		thread := op.Thread
		if n := o.Threads[op.TID]; n != "" {
			thread = n
		}
		so := FSSlowOp{Op: op.Op, Thread: thread, TID: op.TID, Group: groupName(op.File), Bytes: op.Bytes,
			Start: int64(op.Start), Duration: op.Duration(), InWindow: ws.overlaps(int64(op.Start), int64(op.End))}
		if op.File != nil {
			so.Path = op.File.Path
		}
		var forces int
		if j := mostOverlapping(d.Journal, op, &forces); j != nil {
			so.Journal, so.JournalTx, so.JournalNs = j.Kind, j.Transaction, j.Duration()
		}
		so.LogForces = forces
		s.Slowest = append(s.Slowest, so)
	}
	s.Sentence = s.sentence()
	return s
}

type span struct{ s, e int64 }

// spanSet answers "does [s, e] overlap any span" in O(log n) for spans that
// may overlap each other: sorted by start, with the running maximum of
// their ends.
type spanSet struct {
	spans  []span
	maxEnd []int64
}

func (ss *spanSet) build() {
	slices.SortFunc(ss.spans, func(a, b span) int { return cmp.Compare(a.s, b.s) })
	ss.maxEnd = make([]int64, len(ss.spans))
	for i, sp := range ss.spans {
		ss.maxEnd[i] = sp.e
		if i > 0 {
			ss.maxEnd[i] = max(sp.e, ss.maxEnd[i-1])
		}
	}
}

func (ss *spanSet) overlaps(s, e int64) bool {
	// n spans start at or before e; one of them reaches s if their
	// furthest end does.
	n, _ := slices.BinarySearchFunc(ss.spans, e+1, func(sp span, t int64) int { return cmp.Compare(sp.s, t) })
	return n > 0 && ss.maxEnd[n-1] >= s
}

// mostOverlapping is the jbd2 commit or fast commit on op's device that overlapped op the
// longest; it counts the XFS log forces during op in forces.
func mostOverlapping(js []bundle.JournalEvent, op *bundle.FSOp, forces *int) *bundle.JournalEvent {
	var best *bundle.JournalEvent
	var bestNs uint64
	for i := range js {
		j := &js[i]
		if op.File != nil && op.File.Dev != "" && j.Dev != op.File.Dev {
			continue
		}
		if j.Kind == bundle.JournalXFSLogForce && j.Start >= op.Start && j.Start <= op.End {
			*forces++
		}
		if j.Kind != bundle.JournalJBD2Commit && j.Kind != bundle.JournalExt4FastCommit {
			continue
		}
		s, e := max(j.Start, op.Start), min(j.End, op.End)
		if e > s && e-s > bestNs {
			best, bestNs = j, e-s
		}
	}
	return best
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nearestRank(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func (s *FSSummary) sentence() string {
	o := s.Overlap
	var parts []string
	switch {
	case o.Slow > 0 && o.Commits > 0:
		where := "the log dir's device"
		if !o.Partitioned {
			where = "the target's devices"
		}
		parts = append(parts, fmt.Sprintf("%.0f%% of over-SLO requests overlapped a journal commit (jbd2 or fast commit) ≥ %v on %s (%.0f%% of requests within the SLO did)",
			pct(o.SlowLongCommit, o.Slow), s.LongCommit, where, pct(o.WithinLongCommit, o.Within)))
	case o.LogForces > 0:
		parts = append(parts, fmt.Sprintf("the log dir's device is XFS: its %d log forces are instants, not commits with a length, so requests are related to the broker's own syncs", o.LogForces))
	}
	if o.Slow > 0 {
		files := "on their own partition's files"
		if !o.Partitioned {
			files = "on any file of the target (the latency source names no partitions)"
		}
		parts = append(parts, fmt.Sprintf("%.0f%% overlapped a write or sync slower than %v %s (%.0f%% within the SLO)",
			pct(o.SlowSlowOp, o.Slow), s.Min, files, pct(o.WithinSlowOp, o.Within)))
	}
	if len(s.Slowest) > 0 {
		w := s.Slowest[0]
		line := fmt.Sprintf("the slowest was a %s of %s by %s, %v", w.Op, ShortPath(w.Group), w.Thread, w.Duration.Round(time.Microsecond))
		if w.Journal != "" {
			line += fmt.Sprintf(" during %s %d (%v)", w.Journal, w.JournalTx, w.JournalNs.Round(time.Microsecond))
		}
		if w.LogForces > 0 {
			line += fmt.Sprintf(" across %d XFS log forces", w.LogForces)
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return "no slow file operations or journal activity were recorded"
	}
	return strings.Join(parts, "; ")
}

// WriteText writes the summary as the filesystem section of summary.txt.
func (s *FSSummary) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Filesystem (operations over %v recorded one by one, all counted in histograms)\n", s.Min)
	fmt.Fprintf(w, "  %s\n", s.Sentence)
	for _, d := range s.Devices {
		fmt.Fprintf(w, "  device %s on %s: %s (%s)\n", d.Dev, d.MountPoint, d.FSType, d.Options)
	}
	if len(s.Files) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  partition/file\tkind\top\tcount\ttotal\t~p50\t~p99\tmax\tslow\tslow in windows")
		for _, f := range s.Files {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%v\t%v\t%v\t%v\t%d\t%d\n", ShortPath(f.Group), f.Kind, f.Op, f.Count,
				f.Total.Round(time.Microsecond), f.P50.Round(time.Microsecond), f.P99.Round(time.Microsecond),
				f.Max.Round(time.Microsecond), f.Slow, f.SlowInWindows)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(s.Journal) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  journal\tdevice\tcount\tp50\tp99\tmax\t≥ "+s.LongCommit.String())
		for _, j := range s.Journal {
			fmt.Fprintf(tw, "  %s\t%s %s\t%d\t%v\t%v\t%v\t%d\n", j.Kind, j.Dev, ShortPath(j.Mount), j.Count, j.P50.Round(time.Microsecond),
				j.P99.Round(time.Microsecond), j.Max.Round(time.Microsecond), j.Long)
		}
		return tw.Flush()
	}
	return nil
}

// ShortPath keeps the last three elements of a long absolute path, which
// name a Kafka file (log dir, partition or pool, file) well enough in a
// table; the full path is in the JSON.
func ShortPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) <= 3 {
		return p
	}
	return "…/" + strings.Join(parts[len(parts)-3:], "/")
}
