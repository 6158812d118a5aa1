package pprofbuild

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
)

// Builder accumulates the samples of one profile.
type Builder struct {
	p       *profile.Profile
	funcs   map[string]*profile.Function
	locs    map[locKey]*profile.Location
	javaLoc map[javaKey]*profile.Location
	samples map[string]*profile.Sample
	key     []byte
}

type locKey struct {
	fn   uint64
	line int64
}

type javaKey struct {
	m    *jfr.Method
	line int32
	typ  string
}

// New starts a profile with the given sample types (type/unit pairs, e.g.
// "wall", "nanoseconds"). The period type is the first sample type.
func New(types ...[2]string) *Builder {
	p := &profile.Profile{}
	for _, t := range types {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: t[0], Unit: t[1]})
	}
	if len(p.SampleType) > 0 {
		p.PeriodType = &profile.ValueType{Type: p.SampleType[0].Type, Unit: p.SampleType[0].Unit}
	}
	return &Builder{p: p, funcs: map[string]*profile.Function{}, locs: map[locKey]*profile.Location{},
		javaLoc: map[javaKey]*profile.Location{}, samples: map[string]*profile.Sample{}}
}

// SetDefaultSampleType names the sample type pprof shows first.
func (b *Builder) SetDefaultSampleType(t string) { b.p.DefaultSampleType = t }

// SetTime sets the profile's start (Unix ns) and duration (ns).
func (b *Builder) SetTime(start, duration int64) {
	b.p.TimeNanos, b.p.DurationNanos = start, duration
}

// AddComment adds a comment line to the profile (pprof shows them).
func (b *Builder) AddComment(c string) { b.p.Comments = append(b.p.Comments, c) }

// Function returns the function with this system name, creating it with
// name and file on first use.
func (b *Builder) Function(name, system, file string) *profile.Function {
	if fn := b.funcs[system]; fn != nil {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: system, Filename: file}
	b.p.Function = append(b.p.Function, fn)
	b.funcs[system] = fn
	return fn
}

// Location returns the location of a function at a line.
func (b *Builder) Location(fn *profile.Function, line int64) *profile.Location {
	k := locKey{fn: fn.ID, line: line}
	if l := b.locs[k]; l != nil {
		return l
	}
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Line: []profile.Line{{Function: fn, Line: line}}}
	b.p.Location = append(b.p.Location, l)
	b.locs[k] = l
	return l
}

// Synthetic returns a frame that is not code: a thread, a pool, a lock
// class. Name it in brackets ("[data-plane-kafka-request-handler]").
func (b *Builder) Synthetic(name string) *profile.Location {
	return b.Location(b.Function(name, name, ""), 0)
}

// Kernel returns a kernel function's frame ("jbd2_log_wait_commit_[k]").
func (b *Builder) Kernel(symbol string) *profile.Location {
	name := symbol + "_[k]"
	return b.Location(b.Function(name, name, "[kernel]"), 0)
}

// Native returns a native (ELF) function's frame; module is the library.
func (b *Builder) Native(symbol, module string) *profile.Location {
	return b.Location(b.Function(symbol, module+"`"+symbol, module), 0)
}

// Kind tells what a function of a profile built here is.
type Kind uint8

// Function kinds.
const (
	KindJava Kind = iota
	KindNative
	KindKernel
	KindSynthetic
)

// KindOf classifies a function by the naming convention of this package.
func KindOf(fn *profile.Function) Kind {
	switch {
	case fn.Filename == "[kernel]":
		return KindKernel
	case strings.HasPrefix(fn.Name, "["):
		return KindSynthetic
	case strings.Contains(fn.SystemName, "`"):
		return KindNative
	}
	return KindJava
}

// FrameName names a JFR frame by this package's convention: Java methods
// as "pkg.Class.method" (system name with the descriptor, file the class);
// native and C++ symbols recorded by async-profiler by their bare symbol
// (system name "library`symbol", file the library); kernel functions
// "symbol_[k]" in file "[kernel]". A "Native" frame with a real descriptor
// is a Java native method (the JDK's java.lang.Thread.sleep) and keeps its
// class.
func FrameName(f *jfr.Frame) (name, system, file string) {
	m := f.Method
	if m == nil {
		return "[unknown]", "[unknown]", ""
	}
	module := ""
	if m.Class != nil {
		module = m.Class.Name
	}
	switch {
	case f.Type == "Kernel":
		return m.Name + "_[k]", m.Name + "_[k]", "[kernel]"
	case (f.Type == "Native" || f.Type == "C++") && (m.Descriptor == "" || m.Descriptor == "()L;"):
		// async-profiler records native symbols with their library as
		// the class and a dummy descriptor.
		return m.Name, module + "`" + m.Name, module
	}
	name = m.FullName()
	return name, name + m.Descriptor, module
}

// JavaFrame returns the location of a JFR frame, named by FrameName.
func (b *Builder) JavaFrame(f *jfr.Frame) *profile.Location {
	k := javaKey{m: f.Method, line: f.Line, typ: f.Type}
	if l := b.javaLoc[k]; l != nil {
		return l
	}
	name, sys, file := FrameName(f)
	l := b.Location(b.Function(name, sys, file), int64(f.Line))
	b.javaLoc[k] = l
	return l
}

// JavaStack appends the locations of a JFR stack (innermost first, as pprof
// wants them) to locs.
func (b *Builder) JavaStack(locs []*profile.Location, s *jfr.Stack) []*profile.Location {
	if s == nil {
		return locs
	}
	for i := range s.Frames {
		locs = append(locs, b.JavaFrame(&s.Frames[i]))
	}
	return locs
}

// ResetChunk forgets the per-chunk JFR frame cache. Call it when the chunk
// whose frames were added is done: its methods are not seen again, and the
// cache would otherwise grow with every chunk.
func (b *Builder) ResetChunk() { clear(b.javaLoc) }

// Labels are a sample's string and numeric labels.
type Labels struct {
	Str map[string]string
	Num map[string]int64
}

// Add adds values to the sample with these locations (innermost first) and
// labels, creating it on first use. values has one entry per sample type.
func (b *Builder) Add(locs []*profile.Location, values []int64, l Labels) {
	k := b.key[:0]
	for _, loc := range locs {
		k = strconv.AppendUint(k, loc.ID, 36)
		k = append(k, ',')
	}
	for _, name := range sortedKeys(l.Str) {
		k = append(k, '|')
		k = append(k, name...)
		k = append(k, '=')
		k = append(k, l.Str[name]...)
	}
	for _, name := range sortedKeys(l.Num) {
		k = append(k, '#')
		k = append(k, name...)
		k = strconv.AppendInt(k, l.Num[name], 10)
	}
	b.key = k
	if s := b.samples[string(k)]; s != nil {
		for i, v := range values {
			s.Value[i] += v
		}
		return
	}
	s := &profile.Sample{Location: slices.Clone(locs), Value: make([]int64, len(b.p.SampleType))}
	copy(s.Value, values)
	if len(l.Str) > 0 {
		s.Label = make(map[string][]string, len(l.Str))
		for n, v := range l.Str {
			s.Label[n] = []string{v}
		}
	}
	if len(l.Num) > 0 {
		s.NumLabel = make(map[string][]int64, len(l.Num))
		for n, v := range l.Num {
			s.NumLabel[n] = []int64{v}
		}
	}
	b.samples[string(k)] = s
	b.p.Sample = append(b.p.Sample, s)
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Profile returns the finished profile, checked with CheckValid.
func (b *Builder) Profile() (*profile.Profile, error) {
	if err := b.p.CheckValid(); err != nil {
		return nil, fmt.Errorf("building profile: %w", err)
	}
	return b.p, nil
}

// Total returns the sum of a sample type's values.
func Total(p *profile.Profile, sampleType string) int64 {
	i := slices.IndexFunc(p.SampleType, func(v *profile.ValueType) bool { return v.Type == sampleType })
	if i < 0 {
		return 0
	}
	var t int64
	for _, s := range p.Sample {
		t += s.Value[i]
	}
	return t
}

// ThreadPool names the pool a thread belongs to by dropping its per-thread
// numbering, as Kafka names threads: "data-plane-kafka-request-handler-7"
// → "data-plane-kafka-request-handler",
// "data-plane-kafka-network-thread-1-ListenerName(PLAINTEXT)-PLAINTEXT-2"
// → "data-plane-kafka-network-thread", "kafka-scheduler-0" →
// "kafka-scheduler", "ReplicaFetcherThread-0-1" → "ReplicaFetcherThread".
// Names without numbering are their own pool.
func ThreadPool(name string) string {
	// Cut at the first "-<digits>" component: what follows is instance
	// numbering (broker id, listener, index).
	for i := 0; i+1 < len(name); i++ {
		if name[i] != '-' || name[i+1] < '0' || name[i+1] > '9' {
			continue
		}
		j := i + 1
		for j < len(name) && name[j] >= '0' && name[j] <= '9' {
			j++
		}
		if j == len(name) || name[j] == '-' {
			if i == 0 {
				return name
			}
			return name[:i]
		}
	}
	// "pool-3-thread-7", "ForkJoinPool.commonPool-worker-3", "GC Thread#2".
	if k := strings.LastIndexAny(name, "#"); k > 0 {
		return strings.TrimSpace(name[:k])
	}
	return name
}
