package pyroscope

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal/merge"
)

// Pushed sample type names, one per pushed profile. Pyroscope names a
// profile (its __name__) after its sample types: "wall" exactly gives
// "wall", any name containing "cpu" gives "process_cpu", and a name that
// matches none of its rules (cpu, alloc_, inuse_, mutex_, block_,
// goroutines) is used as it is. Merge's "offcpu" would therefore land under
// process_cpu beside real CPU time; it is pushed as "switched_out".
const (
	TypeWall        = "wall"         // wall:wall:nanoseconds:wall:nanoseconds
	TypeLock        = "lock"         // lock:lock:nanoseconds:lock:nanoseconds
	TypeSwitchedOut = "switched_out" // switched_out:switched_out:nanoseconds:switched_out:nanoseconds
	TypeBlame       = "blame"        // blame:blame:nanoseconds:blame:nanoseconds
	TypeCPU         = "cpu"          // process_cpu:cpu:nanoseconds:cpu:nanoseconds
)

// pushedType maps merge's sample types to the names pushed.
var pushedType = map[string]string{
	merge.TypeWall:   TypeWall,
	merge.TypeLock:   TypeLock,
	merge.TypeOffCPU: TypeSwitchedOut,
	merge.TypeBlame:  TypeBlame,
	merge.TypeCPU:    TypeCPU,
}

// keptLabels are the sample labels pushed with the samples. Pyroscope
// turns every string sample label into a series label, so only bounded
// ones are kept: the thread's pool and the thread state. The thread name
// (unbounded: pools grow and shrink), the tid and the window (slo_breach
// says it) stay in the bundle.
var keptLabels = []string{"thread_pool", "state"}

// Profile is one profile ready to push: one sample type, gzipped pprof.
type Profile struct {
	// Type is the pushed sample type (TypeWall...).
	Type string
	// Labels are this profile's series labels besides Options.Labels
	// (slo_breach).
	Labels      map[string]string
	From, Until time.Time
	// Data is the gzipped pprof encoding.
	Data []byte
}

// ProfileTypeID is the id Pyroscope gives a profile pushed with sample
// type typ: __name__:type:unit:period_type:period_unit.
func ProfileTypeID(typ string) string {
	name := typ
	if typ == TypeCPU {
		name = "process_cpu"
	}
	return name + ":" + typ + ":nanoseconds:" + typ + ":nanoseconds"
}

// Split cuts a merged profile (one of merge's, with its sample types) into
// one profile per sample type that has any value, named for Pyroscope,
// stamped with [from, until) and carrying labels. Sample types merge does
// not know are pushed under their sanitized own name.
func Split(p *profile.Profile, from, until time.Time, labels map[string]string) ([]Profile, error) {
	var out []Profile
	for i, st := range p.SampleType {
		typ, ok := pushedType[st.Type]
		if !ok {
			typ = SanitizeLabelName(st.Type)
		}
		one := cutType(p, i, typ)
		if len(one.Sample) == 0 {
			continue
		}
		one.TimeNanos = from.UnixNano()
		one.DurationNanos = until.Sub(from).Nanoseconds()
		if err := one.CheckValid(); err != nil {
			return nil, fmt.Errorf("splitting %s profile: %w", st.Type, err)
		}
		var buf bytes.Buffer
		if err := one.Write(&buf); err != nil {
			return nil, fmt.Errorf("encoding %s profile: %w", typ, err)
		}
		out = append(out, Profile{Type: typ, Labels: labels, From: from, Until: until, Data: buf.Bytes()})
	}
	return out, nil
}

// cutType returns a copy of p with only sample type i, renamed typ, its
// zero samples dropped and only the kept labels.
func cutType(p *profile.Profile, i int, typ string) *profile.Profile {
	c := p.Copy()
	vt := &profile.ValueType{Type: typ, Unit: c.SampleType[i].Unit}
	c.SampleType = []*profile.ValueType{vt}
	c.PeriodType = &profile.ValueType{Type: typ, Unit: vt.Unit}
	c.DefaultSampleType = typ
	c.Sample = slices.DeleteFunc(c.Sample, func(s *profile.Sample) bool { return s.Value[i] == 0 })
	for _, s := range c.Sample {
		s.Value = []int64{s.Value[i]}
		s.NumLabel, s.NumUnit = nil, nil
		var kept map[string][]string
		for _, k := range keptLabels {
			if v := s.Label[k]; len(v) > 0 && v[0] != "" {
				if kept == nil {
					kept = make(map[string][]string, len(keptLabels))
				}
				kept[k] = v[:1]
			}
		}
		s.Label = kept
	}
	return c.Compact()
}
