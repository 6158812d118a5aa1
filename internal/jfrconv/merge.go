package jfrconv

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
)

// merger joins chunk partials, in chunk order, into one profile:
// functions by system name, locations by function and line, samples by
// locations and thread.
type merger struct {
	opt         Options
	p           *profile.Profile
	funcs       map[string]*profile.Function
	locs        map[locKey]*profile.Location
	samples     map[string]*profile.Sample
	stats       Stats
	recordStart int64
	start, end  int64
	keyBuf      []byte
	locBuf      []*profile.Location
	// Samples of one thread share their label maps (read-only once
	// built): two maps per sample were a third of a conversion's
	// allocations.
	threadLabels map[threadKey]threadLabel

	// Settings carry over to later chunks of the same producer:
	// async-profiler writes them only in its first chunk.
	engine         string
	interval, wall int64
	periods        map[string]int64
}

type threadKey struct {
	name string
	tid  int64
}

type threadLabel struct {
	label    map[string][]string
	numLabel map[string][]int64
}

type locKey struct {
	fn   uint64
	line int64
}

func newMerger(opt Options) *merger {
	m := &merger{
		opt:     opt,
		p:       &profile.Profile{SampleType: sampleTypes(opt.Event)},
		funcs:   map[string]*profile.Function{},
		locs:    map[locKey]*profile.Location{},
		samples: map[string]*profile.Sample{},
		periods: map[string]int64{},
	}
	m.p.PeriodType = m.p.SampleType[1]
	return m
}

// stop records a reading error; it reports whether the error is the
// recording's (a *jfr.Error: keep the complete chunks) rather than I/O.
func (m *merger) stop(err error) bool {
	var je *jfr.Error
	if !errors.As(err, &je) {
		return false
	}
	m.stats.Err = err
	return true
}

// settings applies a chunk's settings over the inherited ones and returns
// the ns per cpu/wall sample, per native sample, and whether execution
// samples are wall samples (async-profiler's wall engine, as with nobatch).
func (m *merger) settings(p *partial) (interval, native int64, wallEngine bool) {
	if p.hasEngine {
		m.engine = p.engine
	}
	if p.hasIntv {
		m.interval = p.interval
	}
	if p.hasWall {
		m.wall = p.wall
	}
	for k, v := range p.periods {
		m.periods[k] = v
	}
	smp := jfr.Sampling{AsyncProfiler: p.asprof, Engine: m.engine, Interval: m.interval, Wall: m.wall, Periods: m.periods}
	wallEngine = smp.ExecutionIsWall()
	if m.opt.Event == "wall" || wallEngine {
		interval = smp.WallInterval()
	} else {
		interval = smp.CPUInterval()
	}
	native = smp.NativeInterval()
	return interval, native, wallEngine
}

func (m *merger) add(p *partial) {
	if m.stats.Chunks == 0 {
		m.start = p.start
	}
	if p.end > m.end {
		m.end = p.end
	}
	m.stats.Chunks++
	interval, native, wallEngine := m.settings(p)
	include := [groups]bool{groupMain: true}
	switch m.opt.Event {
	case "cpu":
		include[groupExec] = !wallEngine
	case "wall":
		include[groupExec] = wallEngine
	}
	kind := m.opt.Event
	if (kind == "cpu" || kind == "wall") && m.p.Period == 0 {
		m.p.Period = interval
	}
	locs := make([]*profile.Location, len(p.locs))
	funcs := make([]*profile.Function, len(p.funcs))
	for g := range groups {
		if !include[g] {
			continue
		}
		m.stats.Events += p.events[g]
		m.stats.OutOfRange += p.outOfRange[g]
		m.stats.NoStack += p.noStack[g]
		for _, s := range p.samples[g] {
			v1 := s.v1
			switch kind {
			case "cpu", "wall":
				v1 = s.v0 * interval
			case "native":
				v1 = s.v0 * native
			}
			key := m.keyBuf[:0]
			sl := m.locBuf[:0]
			for _, li := range s.locs {
				l := locs[li]
				if l == nil {
					d := p.locs[li]
					fn := funcs[d.fn]
					if fn == nil {
						fn = m.function(p.funcs[d.fn])
						funcs[d.fn] = fn
					}
					l = m.location(fn, d.line)
					locs[li] = l
				}
				sl = append(sl, l)
				key = strconv.AppendUint(key, l.ID, 36)
				key = append(key, ',')
			}
			if s.thread != nil {
				key = append(key, s.thread.Name()...)
				key = append(key, '|')
				key = strconv.AppendInt(key, s.thread.OSThreadID, 10)
			}
			m.keyBuf, m.locBuf = key, sl
			if old := m.samples[string(key)]; old != nil {
				old.Value[0] += s.v0
				old.Value[1] += v1
				continue
			}
			ps := &profile.Sample{Location: append([]*profile.Location(nil), sl...), Value: []int64{s.v0, v1}}
			if s.thread != nil {
				tk := threadKey{s.thread.Name(), s.thread.OSThreadID}
				tl, ok := m.threadLabels[tk]
				if !ok {
					tl = threadLabel{
						label:    map[string][]string{"thread": {tk.name}},
						numLabel: map[string][]int64{"tid": {tk.tid}},
					}
					if m.threadLabels == nil {
						m.threadLabels = map[threadKey]threadLabel{}
					}
					m.threadLabels[tk] = tl
				}
				ps.Label, ps.NumLabel = tl.label, tl.numLabel
			}
			m.samples[string(key)] = ps
			m.p.Sample = append(m.p.Sample, ps)
		}
	}
}

func (m *merger) function(d fnDesc) *profile.Function {
	if fn := m.funcs[d.sys]; fn != nil {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(m.p.Function) + 1), Name: d.name, SystemName: d.sys}
	m.p.Function = append(m.p.Function, fn)
	m.funcs[d.sys] = fn
	return fn
}

func (m *merger) location(fn *profile.Function, line int64) *profile.Location {
	k := locKey{fn: fn.ID, line: line}
	if l := m.locs[k]; l != nil {
		return l
	}
	l := &profile.Location{ID: uint64(len(m.p.Location) + 1), Line: []profile.Line{{Function: fn, Line: line}}}
	m.p.Location = append(m.p.Location, l)
	m.locs[k] = l
	return l
}

func (m *merger) finish() (*profile.Profile, Stats, error) {
	if m.stats.Chunks == 0 && m.stats.Err != nil {
		return nil, m.stats, fmt.Errorf("reading %s: %w", m.opt.Input, m.stats.Err)
	}
	m.p.TimeNanos = m.start
	m.p.DurationNanos = m.end - m.start
	m.stats.Totals = make([]int64, len(m.p.SampleType))
	for _, s := range m.p.Sample {
		for i, v := range s.Value {
			m.stats.Totals[i] += v
		}
	}
	if err := m.p.CheckValid(); err != nil {
		return nil, m.stats, fmt.Errorf("building profile: %w", err)
	}
	return m.p, m.stats, nil
}

// sampleKey identifies a sample within a chunk by JFR pool keys; class is
// the leaf class key + 1, or 0 for none.
type sampleKey struct {
	stack, thread, class, group uint64
}

// sampleTable is an open-addressing hash table from sampleKey to sample:
// the per-event lookup of a conversion, where a Go map costs too much.
type sampleTable struct {
	keys []sampleKey
	vals []*psample
	n    int
}

func (t *sampleTable) hash(k sampleKey) uint64 {
	h := k.stack*0x9E3779B97F4A7C15 ^ k.thread*0xC2B2AE3D27D4EB4F ^ (k.class<<1|k.group)*0x165667B19E3779F9
	return h ^ h>>29
}

func (t *sampleTable) get(k sampleKey) *psample {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.keys) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		s := t.vals[i]
		if s == nil || t.keys[i] == k {
			return s
		}
	}
}

func (t *sampleTable) put(k sampleKey, s *psample) {
	if 2*(t.n+1) > len(t.keys) {
		old, oldVals := t.keys, t.vals
		size := max(1024, 2*len(t.keys))
		t.keys, t.vals, t.n = make([]sampleKey, size), make([]*psample, size), 0
		for i, v := range oldVals {
			if v != nil {
				t.put(old[i], v)
			}
		}
	}
	mask := uint64(len(t.keys) - 1)
	i := t.hash(k) & mask
	for t.vals[i] != nil && t.keys[i] != k {
		i = (i + 1) & mask
	}
	if t.vals[i] == nil {
		t.n++
	}
	t.keys[i], t.vals[i] = k, s
}
