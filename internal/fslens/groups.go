package fslens

import (
	"fmt"
	"sort"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// Group is every operation of one kind on one topic-partition (all its
// segments, indexes and checkpoints), or on one file outside partitions.
type Group struct {
	// Name is "topic-N", else the file's path, else "dev D ino N".
	Name string
	// Kinds are the kinds of the files summed ("log", "index", ...).
	Kinds []string
	Hist  Histogram
	// Slow counts the operations reported one by one (at least the
	// threshold).
	Slow int
}

// GroupName is the name of the group a file belongs to.
func GroupName(f *bundle.FSFileInfo) string {
	if f == nil {
		return "(unknown file)"
	}
	if tp := f.TopicPartition(); tp != "" {
		return tp
	}
	if f.Path != "" {
		return f.Path
	}
	return fmt.Sprintf("dev %s ino %d", f.Dev, f.Ino)
}

type groupKey struct{ name, op string }

// SlowCounts counts the slow operations per (group, operation).
type SlowCounts map[groupKey]int

// Add counts one slow operation.
func (s SlowCounts) Add(op *bundle.FSOp) { s[groupKey{GroupName(op.File), op.Op}]++ }

// Groups sums histograms and slow operations per (group, operation). It
// is sorted by total time spent, largest first: where the time went.
func Groups(hists []Histogram, slow SlowCounts) []Group {
	m := map[groupKey]*Group{}
	kinds := map[groupKey]map[string]bool{}
	get := func(name, op string) *Group {
		k := groupKey{name, op}
		g := m[k]
		if g == nil {
			g = &Group{Name: name, Hist: Histogram{Op: op, Buckets: make([]uint64, offcpu.FSHistBuckets)}}
			m[k] = g
			kinds[k] = map[string]bool{}
		}
		return g
	}
	for i := range hists {
		h := &hists[i]
		name := GroupName(h.File)
		g := get(name, h.Op)
		g.Hist.Add(h)
		if h.File != nil && h.File.Kind != "" {
			kinds[groupKey{name, h.Op}][h.File.Kind] = true
		}
	}
	for k, n := range slow {
		get(k.name, k.op).Slow += n
	}
	out := make([]Group, 0, len(m))
	for k, g := range m {
		for kind := range kinds[k] {
			g.Kinds = append(g.Kinds, kind)
		}
		sort.Strings(g.Kinds)
		out = append(out, *g)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Hist.SumNs != out[b].Hist.SumNs {
			return out[a].Hist.SumNs > out[b].Hist.SumNs
		}
		if out[a].Name != out[b].Name {
			return out[a].Name < out[b].Name
		}
		return out[a].Hist.Op < out[b].Hist.Op
	})
	return out
}
