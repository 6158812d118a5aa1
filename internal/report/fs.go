package report

import (
	"fmt"
	"os"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"gonum.org/v1/plot/vg"
)

// fs draws the filesystem lens's heat maps: the target's file operations
// over the lens's threshold, and the journal's commits and log forces, on
// the capture's time axis with the windows marked. The tables come from
// the merge's summary (Summary.FS).
func (r *Report) fs(b *bundle.Bundle, o Options) error {
	f, err := os.Open(b.Path(bundle.FSStreamFile))
	if err != nil {
		return fmt.Errorf("building report: %w", err)
	}
	defer f.Close()
	d, err := bundle.ReadFS(f)
	if err != nil {
		return fmt.Errorf("building report: %s: %w", bundle.FSStreamFile, err)
	}
	r.FSRecorded = true
	var min time.Duration
	if b.Meta.FS != nil {
		min = b.Meta.FS.Min
	}
	type point struct{ at, d time.Duration }
	draw := func(title, zlabel string, pts []point) error {
		if len(pts) == 0 {
			return nil
		}
		lo, hi := pts[0].d, pts[0].d
		for _, p := range pts {
			lo, hi = minDur(lo, p.d), max(hi, p.d)
		}
		g := NewGrid(r.Duration, o.Cols, NewBuckets(lo, hi, 5))
		for _, p := range pts {
			g.Add(p.at, p.d, 1)
		}
		fig, err := figure(&HeatMap{Title: title, Grid: g, ZLabel: zlabel, Windows: r.spans(), Height: 8 * vg.Centimeter})
		if err != nil {
			return err
		}
		r.FSMaps = append(r.FSMaps, fig)
		return nil
	}
	var ops, journal []point
	for i := range d.Ops {
		op := &d.Ops[i]
		ops = append(ops, point{time.Duration(int64(op.End) - r.origin), op.Duration()})
	}
	for i := range d.Journal {
		j := &d.Journal[i]
		if j.Kind == bundle.JournalJBD2Commit || j.Kind == bundle.JournalXFSLogForce {
			journal = append(journal, point{time.Duration(int64(j.End) - r.origin), j.Duration()})
		}
	}
	if err := draw(fmt.Sprintf("Broker file operations ≥ %s (write, fsync, ...), by latency", fmtDur(min)), "operations a cell", ops); err != nil {
		return err
	}
	return draw("Journal commits (jbd2) and log forces (XFS), by length", "commits a cell", journal)
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
