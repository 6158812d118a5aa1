package fslens

import (
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// SummarizeBundle computes from a recorded filesystem stream what
// `lockscope fs` prints at its end, for the report and offline tools:
// the per topic-partition table, the journal per device and how many slow
// operations overlapped a commit. Only devices the target did file I/O on
// are kept. pid and span describe the capture (0 when unknown).
func SummarizeBundle(d *bundle.FSData, meta *bundle.FS, pid int, span time.Duration) *Summary {
	s := &Summary{PID: pid, Duration: span}
	mounts := map[uint64]Mount{}
	if meta != nil {
		s.Min = meta.Min
		s.Counters = countersFromMeta(meta.Counters)
		for _, dev := range meta.Devices {
			if n, ok := parseDev(dev.Dev); ok {
				mounts[n] = Mount{Dev: n, Root: "/", MountPoint: dev.MountPoint, FSType: dev.FSType, Source: dev.Source, Options: dev.Options}
			}
		}
	}
	hists := make([]Histogram, len(d.Histograms))
	used := map[string]bool{}
	for i := range d.Histograms {
		hists[i] = FromBundleHistogram(&d.Histograms[i])
		if f := d.Histograms[i].File; f != nil {
			used[f.Dev] = true
		}
	}
	// Stream both in time order through the index, as they happened.
	journal := append([]bundle.JournalEvent(nil), d.Journal...)
	sort.Slice(journal, func(a, b int) bool { return journal[a].Start < journal[b].Start })
	ops := make([]*bundle.FSOp, len(d.Ops))
	for i := range d.Ops {
		ops[i] = &d.Ops[i]
	}
	sort.Slice(ops, func(a, b int) bool { return ops[a].Start < ops[b].Start })
	idx := NewJournalIndex()
	js := NewJournals()
	for i := range journal {
		js.Add(&journal[i])
	}
	slow := SlowCounts{}
	next := 0
	for _, op := range ops {
		for next < len(journal) && journal[next].Start <= op.End {
			idx.Add(&journal[next])
			next++
		}
		js.AddOp(op, idx.Overlap(op))
		slow.Add(op)
		if op.File == nil || op.File.Path == "" {
			s.Unresolved++
		}
		if op.File != nil {
			used[op.File.Dev] = true
		}
	}
	s.Groups = Groups(hists, slow)
	for _, dj := range js.List(mounts) {
		if used[dj.Dev] {
			s.Devices = append(s.Devices, dj)
		}
	}
	return s
}

func parseDev(s string) (uint64, bool) {
	var major, minor uint32
	if _, err := fmt.Sscanf(s, "%d:%d", &major, &minor); err != nil {
		return 0, false
	}
	return unix.Mkdev(major, minor), true
}

// countersFromMeta reads the counters capture records in meta.json.
func countersFromMeta(m map[string]uint64) offcpu.FSCounters {
	return offcpu.FSCounters{Events: m["events"], JournalEvents: m["journal_events"], Drops: m["drops"],
		HistogramOverflow: m["histogram_overflow"], InflightFailures: m["inflight_failures"], NonFiles: m["non_files"],
		Malformed: m["malformed"], Unpaired: m["unpaired"]}
}
