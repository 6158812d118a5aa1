package jfrconv

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
)

// Stats counts what a conversion read, kept and left out.
type Stats struct {
	Chunks     int
	Events     int     // events of the selected kind inside the time window
	OutOfRange int     // events of the selected kind outside the window
	NoStack    int     // converted events without a stack (kept with a "[no stack]" frame)
	Totals     []int64 // per sample type, the sum over converted events
	// Err is the error that ended reading early (a truncated last chunk):
	// the profile holds every complete chunk before it.
	Err error
}

// Default sampling intervals of the producers, used when a chunk does not
// state one (async-profiler writes interval=0 for "default").
const (
	asprofCPUInterval  = 10_000_000
	asprofWallInterval = 50_000_000
	jdkSamplePeriod    = 20_000_000
)

// handler says how an event type contributes to the profile.
type handler uint8

const (
	hNone handler = iota
	hCPU
	hWall
	hWallExec // jdk.ExecutionSample from async-profiler's wall engine
	hDuration
	hAllocTLAB
	hAllocOutside
	hAllocSample
	hLive
	hMalloc
	hNative
)

func sampleTypes(kind string) []*profile.ValueType {
	vt := func(a, b, c, d string) []*profile.ValueType {
		return []*profile.ValueType{{Type: a, Unit: b}, {Type: c, Unit: d}}
	}
	switch kind {
	case "cpu":
		return vt("samples", "count", "cpu", "nanoseconds")
	case "wall":
		return vt("samples", "count", "wall", "nanoseconds")
	case "native":
		return vt("samples", "count", "native", "nanoseconds")
	case "alloc":
		return vt("alloc_objects", "count", "alloc_space", "bytes")
	case "live":
		return vt("live_objects", "count", "live_space", "bytes")
	case "malloc":
		return vt("malloc_calls", "count", "malloc_space", "bytes")
	}
	return vt("contentions", "count", "delay", "nanoseconds")
}

func handlerFor(kind string, t *jfr.Type, wallEngine bool) handler {
	n := t.Name
	switch kind {
	case "cpu":
		if n == "jdk.ExecutionSample" && !wallEngine {
			return hCPU
		}
	case "wall":
		if n == "profiler.WallClockSample" {
			return hWall
		}
		if n == "jdk.ExecutionSample" && wallEngine {
			return hWallExec
		}
	case "lock":
		if n == "jdk.JavaMonitorEnter" || n == "jdk.ThreadPark" {
			return hDuration
		}
	case "monitor":
		if n == "jdk.JavaMonitorEnter" {
			return hDuration
		}
	case "park":
		if n == "jdk.ThreadPark" {
			return hDuration
		}
	case "sleep":
		if n == "jdk.ThreadSleep" {
			return hDuration
		}
	case "io":
		switch n {
		case "jdk.FileRead", "jdk.FileWrite", "jdk.FileForce", "jdk.SocketRead", "jdk.SocketWrite":
			return hDuration
		}
	case "nativelock":
		if n == "profiler.NativeLock" {
			return hDuration
		}
	case "alloc":
		switch n {
		case "jdk.ObjectAllocationInNewTLAB":
			return hAllocTLAB
		case "jdk.ObjectAllocationOutsideTLAB":
			return hAllocOutside
		case "jdk.ObjectAllocationSample":
			return hAllocSample
		}
	case "live":
		if n == "profiler.LiveObject" {
			return hLive
		}
	case "malloc":
		if n == "profiler.Malloc" {
			return hMalloc
		}
	case "native":
		if n == "jdk.NativeMethodSample" {
			return hNative
		}
	}
	return hNone
}

// leafClassField names the class shown as the leaf frame of an event.
var leafClassField = map[string]string{
	"jdk.JavaMonitorEnter":            "monitorClass",
	"jdk.ThreadPark":                  "parkedClass",
	"jdk.ObjectAllocationInNewTLAB":   "objectClass",
	"jdk.ObjectAllocationOutsideTLAB": "objectClass",
	"jdk.ObjectAllocationSample":      "objectClass",
	"profiler.LiveObject":             "objectClass",
}

// builder accumulates one profile across chunks.
type builder struct {
	opt        Options
	kind       string
	p          *profile.Profile
	funcs      map[string]*profile.Function
	locs       map[locKey]*profile.Location
	samples    map[string]*profile.Sample
	from, to   bound
	startNanos int64
	endNanos   int64
	stats      Stats
	keyBuf     []byte

	// Settings carry over to later chunks of the same producer:
	// async-profiler writes them only in its first chunk.
	engine         string
	interval, wall int64
	periods        map[string]int64
}

type locKey struct {
	fn   uint64
	line int64
}

// chunkState holds what is valid only within one chunk: JFR ids.
type chunkState struct {
	c         *jfr.Chunk
	handlers  map[*jfr.Type]*typeInfo
	byID      []*typeInfo // by type id, for the small ids producers use
	fnByMeth  map[*jfr.Method]*profile.Function
	locByKey  map[chunkLocKey]*profile.Location
	stackLocs map[uint64][]*profile.Location
	samples   sampleTable
	order     []*profile.Sample // samples in order of creation, for a stable output
	interval  int64             // ns per cpu or wall sample
	native    int64             // ns per native method sample
}

// typeInfo is how one event type of a chunk is converted, with its field
// indexes looked up once per chunk.
type typeInfo struct {
	h     handler
	value int // index of samples / tlabSize / allocationSize / weight / size, or -1
	class int // index of the leaf class field, or -1
}

type chunkLocKey struct {
	m    *jfr.Method
	line int32
	typ  string
}

// sampleKey identifies a sample within a chunk by JFR pool keys; class is
// the leaf class key + 1, or 0 for none.
type sampleKey struct {
	stack, thread, class uint64
}

// Profile converts every chunk of r into one profile of the selected kind.
// A truncated or corrupt recording still gives the profile of its complete
// chunks, with the error in Stats.Err.
func Profile(r *jfr.Reader, opt Options) (*profile.Profile, Stats, error) {
	if err := opt.Validate(); err != nil {
		return nil, Stats{}, err
	}
	b := &builder{
		opt:     opt,
		kind:    opt.Event,
		p:       &profile.Profile{SampleType: sampleTypes(opt.Event)},
		funcs:   map[string]*profile.Function{},
		locs:    map[locKey]*profile.Location{},
		samples: map[string]*profile.Sample{},
	}
	b.from, _ = parseBound(opt.From)
	b.to, _ = parseBound(opt.To)
	b.p.PeriodType = b.p.SampleType[1]
	for {
		c, err := r.NextChunk()
		if err == io.EOF {
			break
		}
		if err != nil {
			var je *jfr.Error
			if errors.As(err, &je) {
				b.stats.Err = err
				break
			}
			return nil, b.stats, err
		}
		if err := b.chunk(c); err != nil {
			var je *jfr.Error
			if errors.As(err, &je) {
				b.stats.Err = err
				break
			}
			return nil, b.stats, err
		}
	}
	if b.stats.Chunks == 0 && b.stats.Err != nil {
		return nil, b.stats, fmt.Errorf("reading %s: %w", opt.Input, b.stats.Err)
	}
	b.p.TimeNanos = b.startNanos
	b.p.DurationNanos = b.endNanos - b.startNanos
	b.stats.Totals = make([]int64, len(b.p.SampleType))
	for _, s := range b.p.Sample {
		for i, v := range s.Value {
			b.stats.Totals[i] += v
		}
	}
	if err := b.p.CheckValid(); err != nil {
		return nil, b.stats, fmt.Errorf("building profile: %w", err)
	}
	return b.p, b.stats, nil
}

func (b *builder) chunk(c *jfr.Chunk) error {
	if b.stats.Chunks == 0 {
		b.startNanos = c.Header.StartNanos
	}
	if end := c.Header.StartNanos + c.Header.DurationNanos; end > b.endNanos {
		b.endNanos = end
	}
	cs := &chunkState{
		c:         c,
		handlers:  map[*jfr.Type]*typeInfo{},
		fnByMeth:  map[*jfr.Method]*profile.Function{},
		locByKey:  map[chunkLocKey]*profile.Location{},
		stackLocs: map[uint64][]*profile.Location{},
	}
	wallEngine := b.readSettings(cs)
	for _, t := range c.Metadata.Types {
		if !t.IsEvent() {
			continue
		}
		h := handlerFor(b.kind, t, wallEngine)
		if h == hNone {
			continue
		}
		ti := &typeInfo{h: h, value: -1, class: -1}
		switch h {
		case hWall:
			ti.value = t.FieldIndex("samples")
		case hAllocTLAB:
			ti.value = t.FieldIndex("tlabSize")
		case hAllocOutside, hLive:
			ti.value = t.FieldIndex("allocationSize")
		case hAllocSample:
			ti.value = t.FieldIndex("weight")
		case hMalloc:
			ti.value = t.FieldIndex("size")
		}
		if f, ok := leafClassField[t.Name]; ok {
			if i := t.FieldIndex(f); i >= 0 && t.Fields[i].ConstantPool && t.Fields[i].Type.Name == "java.lang.Class" {
				ti.class = i
			}
		}
		cs.handlers[t] = ti
		if t.ID < 1<<12 {
			for uint64(len(cs.byID)) <= t.ID {
				cs.byID = append(cs.byID, nil)
			}
			cs.byID[t.ID] = ti
		}
	}
	from, to := b.window(c)
	windowed := b.from.set || b.to.set
	for c.Next() {
		ev := c.Event()
		var ti *typeInfo
		if id := ev.Type.ID; id < uint64(len(cs.byID)) {
			ti = cs.byID[id]
		} else {
			ti = cs.handlers[ev.Type]
		}
		if ti == nil {
			continue
		}
		if windowed {
			if start := ev.Start(); start < from || start >= to {
				b.stats.OutOfRange++
				continue
			}
		}
		var v0, v1 int64
		switch ti.h {
		case hCPU, hWallExec:
			v0, v1 = 1, cs.interval
		case hWall:
			v0 = int64(uint32(ev.RawAt(ti.value))) // samples is unsigned
			v1 = v0 * cs.interval
		case hNative:
			v0, v1 = 1, cs.native
		case hDuration:
			v0, v1 = 1, ev.Duration()
		default:
			if ti.value >= 0 {
				v1 = int64(ev.RawAt(ti.value))
			}
			v0 = 1
		}
		if err := ev.Err(); err != nil {
			return err
		}
		k := sampleKey{stack: ev.StackID(), thread: ev.ThreadID()}
		if ti.class >= 0 {
			k.class = ev.RawAt(ti.class) + 1 // 0: no class
		}
		s := cs.samples.get(k)
		if s == nil {
			s = b.newSample(cs, k)
			cs.samples.put(k, s)
			cs.order = append(cs.order, s)
		}
		s.Value[0] += v0
		s.Value[1] += v1
		b.stats.Events++
	}
	if err := c.Err(); err != nil {
		return err
	}
	b.stats.Chunks++
	b.flush(cs)
	return nil
}

// window turns the time bounds into absolute epoch ns for this recording.
func (b *builder) window(c *jfr.Chunk) (int64, int64) {
	from, to := int64(-1<<63), int64(1<<63-1)
	if b.from.set {
		from = b.from.ns
		if b.from.relative {
			from += b.startNanos
		}
	}
	if b.to.set {
		to = b.to.ns
		if b.to.relative {
			to += b.startNanos
		}
	}
	return from, to
}

// readSettings reads the chunk's sampling intervals from jdk.ActiveSetting
// and reports whether async-profiler ran its wall engine (then execution
// samples are wall samples, as with nobatch).
func (b *builder) readSettings(cs *chunkState) bool {
	c := cs.c
	set := c.Metadata.Type("jdk.ActiveSetting")
	asprof := c.Producer == jfr.ProducerAsyncProfiler
	if b.periods == nil {
		b.periods = map[string]int64{}
	}
	periods := b.periods
	if set != nil {
		for c.Next() {
			ev := c.Event()
			if ev.Type != set {
				continue
			}
			name, _ := ev.String("name")
			value, _ := ev.String("value")
			if asprof {
				switch name {
				case "engine":
					b.engine = value
				case "interval":
					b.interval, _ = strconv.ParseInt(value, 10, 64)
				case "wall":
					b.wall, _ = strconv.ParseInt(value, 10, 64)
				}
				continue
			}
			if name == "period" {
				id, _ := ev.Int("id")
				if t := c.Metadata.TypeByID(uint64(id)); t != nil {
					if ns, ok := parseJavaDuration(value); ok {
						periods[t.Name] = ns
					}
				}
			}
		}
		c.Rewind()
	}
	engine, interval, wall := b.engine, b.interval, b.wall
	wallEngine := asprof && engine == "wall"
	switch {
	case !asprof:
		cs.interval = periods["jdk.ExecutionSample"]
		if cs.interval == 0 {
			cs.interval = jdkSamplePeriod
		}
	case b.kind == "wall" && !wallEngine:
		cs.interval = wall
		if cs.interval == 0 {
			cs.interval = asprofWallInterval
		}
	case wallEngine:
		cs.interval = interval
		if cs.interval == 0 {
			cs.interval = asprofWallInterval
		}
	default:
		cs.interval = interval
		if cs.interval == 0 {
			cs.interval = asprofCPUInterval
		}
	}
	cs.native = periods["jdk.NativeMethodSample"]
	if cs.native == 0 {
		cs.native = jdkSamplePeriod
	}
	if b.p.Period == 0 && (b.kind == "cpu" || b.kind == "wall") {
		b.p.Period = cs.interval
	}
	return wallEngine
}

// sampleTable is an open-addressing hash table from sampleKey to sample:
// the per-event lookup of a conversion, where a Go map costs too much.
type sampleTable struct {
	keys []sampleKey
	vals []*profile.Sample
	n    int
}

func (t *sampleTable) hash(k sampleKey) uint64 {
	h := k.stack*0x9E3779B97F4A7C15 ^ k.thread*0xC2B2AE3D27D4EB4F ^ k.class*0x165667B19E3779F9
	return h ^ h>>29
}

func (t *sampleTable) get(k sampleKey) *profile.Sample {
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

func (t *sampleTable) put(k sampleKey, s *profile.Sample) {
	if 2*(t.n+1) > len(t.keys) {
		old, oldVals := t.keys, t.vals
		size := max(1024, 2*len(t.keys))
		t.keys, t.vals, t.n = make([]sampleKey, size), make([]*profile.Sample, size), 0
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

// parseJavaDuration parses JFR setting values such as "10 ms" or "1 s".
func parseJavaDuration(s string) (int64, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]int64{"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9}[f[1]]
	if unit == 0 {
		return 0, false
	}
	return n * unit, true
}

func (b *builder) newSample(cs *chunkState, k sampleKey) *profile.Sample {
	s := &profile.Sample{Value: make([]int64, 2)}
	var locs []*profile.Location
	if k.class != 0 {
		if cl := cs.c.Class(k.class - 1); cl != nil {
			locs = append(locs, b.syntheticLoc(cl.Name))
		}
	}
	st, ok := cs.stackLocs[k.stack]
	if !ok {
		if stack := cs.c.Stack(k.stack); stack != nil {
			st = make([]*profile.Location, len(stack.Frames))
			for i := range stack.Frames {
				st[i] = b.frameLoc(cs, &stack.Frames[i])
			}
		}
		cs.stackLocs[k.stack] = st
	}
	if st == nil {
		b.stats.NoStack++
		locs = append(locs, b.syntheticLoc("[no stack]"))
	}
	locs = append(locs, st...)
	th := cs.c.Thread(k.thread)
	if b.opt.Threads {
		locs = append(locs, b.syntheticLoc(threadFrame(th)))
	}
	s.Location = locs
	if th != nil {
		s.Label = map[string][]string{"thread": {th.Name()}}
		s.NumLabel = map[string][]int64{"tid": {th.OSThreadID}}
	}
	return s
}

func threadFrame(th *jfr.Thread) string {
	if th == nil {
		return "[unknown thread]"
	}
	return fmt.Sprintf("[%s tid=%d]", th.Name(), th.OSThreadID)
}

// frameLoc returns the location of a frame, deduplicated by the method's
// JFR id within the chunk and by name only on a chunk's first sight of a
// method.
func (b *builder) frameLoc(cs *chunkState, f *jfr.Frame) *profile.Location {
	ck := chunkLocKey{m: f.Method, line: f.Line, typ: f.Type}
	if l := cs.locByKey[ck]; l != nil {
		return l
	}
	fn := cs.fnByMeth[f.Method]
	if fn == nil {
		name, sys := "[unknown]", "[unknown]"
		if f.Method != nil {
			name = f.Method.FullName()
			sys = name + f.Method.Descriptor
			// Native symbols (libc, libjvm, kernel) carry their library
			// as class and no descriptor: show the bare symbol, as
			// async-profiler does, keeping the library in SystemName.
			if f.Method.Descriptor == "" && (f.Type == "Native" || f.Type == "C++" || f.Type == "Kernel") {
				name = f.Method.Name
			}
		}
		if f.Type == "Kernel" {
			name += "_[k]"
		}
		fn = b.function(name, sys)
		cs.fnByMeth[f.Method] = fn
	}
	l := b.location(fn, int64(f.Line))
	cs.locByKey[ck] = l
	return l
}

func (b *builder) function(name, sys string) *profile.Function {
	if fn := b.funcs[sys]; fn != nil {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: sys}
	b.p.Function = append(b.p.Function, fn)
	b.funcs[sys] = fn
	return fn
}

func (b *builder) location(fn *profile.Function, line int64) *profile.Location {
	k := locKey{fn: fn.ID, line: line}
	if l := b.locs[k]; l != nil {
		return l
	}
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Line: []profile.Line{{Function: fn, Line: line}}}
	b.p.Location = append(b.p.Location, l)
	b.locs[k] = l
	return l
}

// syntheticLoc is a frame that is not a method: a class name, a thread.
func (b *builder) syntheticLoc(name string) *profile.Location {
	return b.location(b.function(name, name), 0)
}

// flush moves a chunk's samples into the profile, merging them with equal
// samples of earlier chunks (same locations and thread).
func (b *builder) flush(cs *chunkState) {
	for _, s := range cs.order {
		key := b.keyBuf[:0]
		for _, l := range s.Location {
			key = strconv.AppendUint(key, l.ID, 36)
			key = append(key, ',')
		}
		if s.Label != nil {
			key = append(key, s.Label["thread"][0]...)
			key = append(key, '|')
			key = strconv.AppendInt(key, s.NumLabel["tid"][0], 10)
		}
		b.keyBuf = key
		if old := b.samples[string(key)]; old != nil {
			old.Value[0] += s.Value[0]
			old.Value[1] += s.Value[1]
			continue
		}
		b.samples[string(key)] = s
		b.p.Sample = append(b.p.Sample, s)
	}
}
