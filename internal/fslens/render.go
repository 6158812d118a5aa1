package fslens

import (
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// FileLabel is how a file is shown: "topic-N/segment", else its path, else
// its device and inode.
func FileLabel(f *bundle.FSFileInfo) string {
	if f == nil {
		return "?"
	}
	if tp := f.TopicPartition(); tp != "" {
		return tp + "/" + path.Base(f.Path)
	}
	if f.Path != "" {
		return f.Path
	}
	return fmt.Sprintf("dev %s ino %d", f.Dev, f.Ino)
}

// Dur formats a latency compactly with three significant digits.
func Dur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", int64(d))
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// Bytes formats a byte count in binary units.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit && exp < 4; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// OverlapLabel says which journal activity an operation overlapped.
func OverlapLabel(o Overlap) string {
	var parts []string
	if c := o.Commit; c != nil {
		parts = append(parts, fmt.Sprintf("jbd2 commit #%d %s (locked %s flushing %s logging %s; %d handles, %d blocks)",
			c.Transaction, Dur(c.Duration()), Dur(c.Locked), Dur(c.Flushing), Dur(c.Logging), c.Handles, c.Blocks))
	}
	if o.LogForces > 0 {
		s := fmt.Sprintf("xfs log force x%d", o.LogForces)
		if o.ByThread {
			s += " (by this thread)"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// Printer writes slow operations one per line as they come.
type Printer struct {
	W io.Writer
	// Wall converts a CLOCK_MONOTONIC time to wall-clock time.
	Wall   func(mono uint64) time.Time
	header bool
}

const opFormat = "%-12s %-7s %-22.22s %-9s %-44s %9s %10s  %s\n"

// Op writes one operation.
func (p *Printer) Op(op *bundle.FSOp, o Overlap) error {
	if !p.header {
		p.header = true
		if _, err := fmt.Fprintf(p.W, opFormat, "TIME", "TID", "THREAD", "OP", "FILE", "BYTES", "LATENCY", "JOURNAL"); err != nil {
			return err
		}
	}
	ts := "?"
	if p.Wall != nil {
		ts = p.Wall(op.Start).Format("15:04:05.000")
	}
	bytes := "-"
	switch {
	case op.Errno != 0:
		bytes = fmt.Sprintf("errno %d", op.Errno)
	case !strings.HasSuffix(op.Op, "sync"):
		bytes = Bytes(uint64(op.Bytes))
	}
	thread := op.Thread
	if thread == "" {
		thread = "?"
	}
	_, err := fmt.Fprintf(p.W, opFormat, ts, fmt.Sprint(op.TID), thread, op.Op, FileLabel(op.File), bytes, Dur(op.Duration()), OverlapLabel(o))
	return err
}

// Summary is what `lockscope fs` prints at the end.
type Summary struct {
	PID      int
	Duration time.Duration
	Min      time.Duration // offcpu.KeepAll: every operation was reported
	Groups   []Group
	Devices  []DeviceJournal
	Counters offcpu.FSCounters
	Missing  []string
	// Unresolved counts slow operations whose file was not found.
	Unresolved int
}

// WriteSummary writes the per topic-partition table, the histograms of
// the groups that took the most time, and the journal per device.
func WriteSummary(w io.Writer, s *Summary) error {
	ew := &errWriter{w: w}
	min := "every operation"
	if s.Min >= 0 {
		min = Dur(s.Min)
	}
	who := "the target"
	if s.PID > 0 {
		who = fmt.Sprintf("pid %d", s.PID)
	}
	over := ""
	if s.Duration > 0 {
		over = " over " + s.Duration.Round(time.Millisecond).String()
	}
	fmt.Fprintf(ew, "\nFile operations of %s%s (all counted in the kernel; reported one by one from %s):\n", who, over, min)
	if len(s.Groups) == 0 {
		fmt.Fprintln(ew, "  none on regular files")
	} else {
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC-PARTITION / FILE\tOP\tCOUNT\tBYTES\tTOTAL\tMEAN\tP50\tP99\tMAX\tSLOW\tKINDS")
		for i := range s.Groups {
			g := &s.Groups[i]
			h := &g.Hist
			bytes := "-"
			if !strings.HasSuffix(h.Op, "sync") {
				bytes = Bytes(h.Bytes)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", g.Name, h.Op, h.Count, bytes,
				Dur(time.Duration(h.SumNs)), Dur(h.Mean()), Dur(h.Quantile(0.5)), Dur(h.Quantile(0.99)),
				Dur(time.Duration(h.MaxNs)), g.Slow, strings.Join(g.Kinds, ","))
		}
		tw.Flush()
		fmt.Fprintln(ew, "  (P50 and P99 from log2 buckets: within a factor of two)")
		for i := range s.Groups {
			if i == histogramsShown {
				fmt.Fprintf(ew, "\n(%d more groups, histograms not shown)\n", len(s.Groups)-i)
				break
			}
			writeHistogram(ew, &s.Groups[i])
		}
	}

	fmt.Fprintln(ew, "\nJournal per device:")
	if len(s.Devices) == 0 {
		fmt.Fprintln(ew, "  no journal activity seen")
	}
	for i := range s.Devices {
		writeDevice(ew, &s.Devices[i])
	}
	if s.Unresolved > 0 {
		fmt.Fprintf(ew, "\n%d slow operations on files that could not be found by inode (closed and deleted before they were read)\n", s.Unresolved)
	}
	if len(s.Missing) > 0 {
		fmt.Fprintf(ew, "\nNot traced (tracepoints missing on this kernel): %s\n", strings.Join(s.Missing, ", "))
	}
	fmt.Fprintf(ew, "\nTracer: %v\n", s.Counters)
	if c := s.Counters; c.Drops+c.HistogramOverflow+c.InflightFailures+c.Malformed > 0 {
		fmt.Fprintln(ew, "WARNING: data was lost (drops: the ring buffer filled faster than it was read; histogram overflow: more files than --max-files)")
	}
	return ew.err
}

// histogramsShown bounds the histograms printed at the end.
const histogramsShown = 8

func writeHistogram(w io.Writer, g *Group) {
	h := &g.Hist
	lo, hi := -1, -1
	var peak uint64
	for i, b := range h.Buckets {
		if b > 0 {
			if lo < 0 {
				lo = i
			}
			hi = i
			peak = max(peak, b)
		}
	}
	if lo < 0 {
		return
	}
	fmt.Fprintf(w, "\n%s %s: %d ops, %d slow\n", g.Name, h.Op, h.Count, g.Slow)
	const width = 40
	for i := lo; i <= hi; i++ {
		b := h.Buckets[i]
		n := int(b * width / peak)
		if b > 0 && n == 0 {
			n = 1
		}
		fmt.Fprintf(w, "  %10s .. %-10s %8d |%-*s|\n", Dur(time.Duration(uint64(1)<<i)), Dur(time.Duration(uint64(1)<<(i+1))),
			b, width, strings.Repeat("*", n))
	}
}

func writeDevice(w io.Writer, d *DeviceJournal) {
	where := "(not in the target's mounts)"
	if m := d.Mount; m != nil {
		where = fmt.Sprintf("%s %s %s (%s)", m.MountPoint, m.FSType, m.Source, m.Options)
	}
	fmt.Fprintf(w, "  dev %s: %s\n", d.Dev, where)
	if d.Commits > 0 {
		h := &d.CommitTime
		fmt.Fprintf(w, "    jbd2 commits: %d (%d synchronous); duration p50 %s p99 %s max %s; phases in total: running %s, locked %s, flushing %s, logging %s; %d handles, %d blocks\n",
			d.Commits, d.SyncCommits, Dur(h.Quantile(0.5)), Dur(h.Quantile(0.99)), Dur(time.Duration(h.MaxNs)),
			Dur(d.RunningSum), Dur(d.Locked), Dur(d.Flushing), Dur(d.Logging), d.Handles, d.Blocks)
		for _, c := range d.Slowest {
			fmt.Fprintf(w, "      slowest: #%d %s (locked %s flushing %s logging %s; %d handles, %d blocks)\n",
				c.Transaction, Dur(c.Duration()), Dur(c.Locked), Dur(c.Flushing), Dur(c.Logging), c.Handles, c.Blocks)
		}
	}
	if d.LongHandles > 0 {
		fmt.Fprintf(w, "    jbd2 handles held by the target for a jiffy or more: %d\n", d.LongHandles)
	}
	if d.LogForces > 0 {
		fmt.Fprintf(w, "    xfs log forces: %d\n", d.LogForces)
	}
	if d.Syncs > 0 {
		fmt.Fprintf(w, "    file syncs by the target: %d\n", d.Syncs)
	}
	if d.SlowOps > 0 {
		fmt.Fprintf(w, "    slow operations: %d, of which %d (%.0f%%) overlapped a journal commit or log force\n",
			d.SlowOps, d.InJournal, 100*float64(d.InJournal)/float64(d.SlowOps))
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
