package jfrconv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/pprofbuild"
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

// handler says how an event type contributes to the profile.
type handler uint8

const (
	hNone     handler = iota
	hExec             // jdk.ExecutionSample: cpu, or wall under async-profiler's wall engine
	hWall             // profiler.WallClockSample, weighted by its samples field
	hNative           // jdk.NativeMethodSample
	hDuration         // weighted by duration
	hValue            // weighted by a size field
	hSetting          // jdk.ActiveSetting: sampling intervals
)

// Sample groups of a chunk. Whether execution samples are CPU or wall
// samples, and how many nanoseconds a sample weighs, depend on settings
// async-profiler writes only into its first chunk; chunks are converted
// concurrently, so those decisions wait for the merge, in chunk order.
const (
	groupMain = iota
	groupExec
	groups
)

func handlerFor(kind string, t *jfr.Type) (handler, string) {
	n := t.Name
	switch kind {
	case "cpu":
		if n == "jdk.ExecutionSample" {
			return hExec, ""
		}
	case "wall":
		if n == "profiler.WallClockSample" {
			return hWall, "samples"
		}
		if n == "jdk.ExecutionSample" {
			return hExec, ""
		}
	case "native":
		if n == "jdk.NativeMethodSample" {
			return hNative, ""
		}
	case "lock":
		if n == "jdk.JavaMonitorEnter" || n == "jdk.ThreadPark" {
			return hDuration, ""
		}
	case "monitor":
		if n == "jdk.JavaMonitorEnter" {
			return hDuration, ""
		}
	case "park":
		if n == "jdk.ThreadPark" {
			return hDuration, ""
		}
	case "sleep":
		if n == "jdk.ThreadSleep" {
			return hDuration, ""
		}
	case "io":
		switch n {
		case "jdk.FileRead", "jdk.FileWrite", "jdk.FileForce", "jdk.SocketRead", "jdk.SocketWrite":
			return hDuration, ""
		}
	case "nativelock":
		if n == "profiler.NativeLock" {
			return hDuration, ""
		}
	case "alloc":
		switch n {
		case "jdk.ObjectAllocationInNewTLAB":
			// Sampled per new TLAB: the TLAB's size is what the sample
			// stands for, as async-profiler's converter counts it.
			return hValue, "tlabSize"
		case "jdk.ObjectAllocationOutsideTLAB":
			return hValue, "allocationSize"
		case "jdk.ObjectAllocationSample":
			return hValue, "weight"
		}
	case "live":
		if n == "profiler.LiveObject" {
			return hValue, "allocationSize"
		}
	case "malloc":
		if n == "profiler.Malloc" {
			return hValue, "size"
		}
	}
	return hNone, ""
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

// typeInfo is how one event type of a chunk is converted, with its field
// indexes looked up once per chunk.
type typeInfo struct {
	h     handler
	value int // index of the weight field, or -1
	class int // index of the leaf class field, or -1
}

// Profile converts every chunk of r, one after the other, into one profile
// of the selected kind. A truncated or corrupt recording still gives the
// profile of its complete chunks, with the error in Stats.Err.
func Profile(r *jfr.Reader, opt Options) (*profile.Profile, Stats, error) {
	if err := opt.Validate(); err != nil {
		return nil, Stats{}, err
	}
	m := newMerger(opt)
	for {
		c, err := r.NextChunk()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !m.stop(err) {
				return nil, m.stats, err
			}
			break
		}
		if c.Index == 0 {
			m.recordStart = c.Header.StartNanos
		}
		part := convertChunk(c, m.opt, m.recordStart)
		if part.err != nil {
			if !m.stop(part.err) {
				return nil, m.stats, part.err
			}
			break
		}
		m.add(part)
	}
	return m.finish()
}

// ProfileFile converts the recording file at path like Profile, decoding
// up to workers chunks at once (0: one per CPU). Memory holds at most
// workers chunks plus the profile.
func ProfileFile(path string, opt Options, workers int) (*profile.Profile, Stats, error) {
	if err := opt.Validate(); err != nil {
		return nil, Stats{}, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	m := newMerger(opt)
	start, err := recordingStart(path)
	if err != nil {
		return nil, m.stats, err
	}
	m.recordStart = start
	var parts []*partial
	var mu sync.Mutex
	err = jfr.Parallel(path, workers, func(c *jfr.Chunk) error {
		p := convertChunk(c, opt, start)
		mu.Lock()
		for len(parts) <= c.Index {
			parts = append(parts, nil)
		}
		parts[c.Index] = p
		mu.Unlock()
		return p.err
	})
	failed := len(parts)
	if err != nil {
		var je *jfr.Error
		if !errors.As(err, &je) {
			return nil, m.stats, err
		}
		failed = je.Chunk
		m.stop(err)
	}
	for i := 0; i < failed && i < len(parts) && parts[i] != nil; i++ {
		m.add(parts[i])
	}
	return m.finish()
}

// recordingStart reads the first chunk header's start (epoch ns), which
// relative --from/--to are measured from.
func recordingStart(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening recording: %w", err)
	}
	defer f.Close()
	b := make([]byte, 68)
	n, _ := io.ReadFull(f, b)
	h, err := jfr.ParseHeader(b[:n])
	if err != nil {
		return 0, &jfr.Error{Chunk: 0, Offset: 0, Err: err}
	}
	return h.StartNanos, nil
}

// partial is one chunk's contribution, in chunk-local tables so that
// chunks can be converted concurrently and merged afterwards.
type partial struct {
	index              int
	asprof             bool
	start, end         int64
	engine             string
	interval, wall     int64
	hasEngine, hasIntv bool
	hasWall            bool
	periods            map[string]int64

	funcs     []fnDesc
	locs      []locDesc
	fnByMeth  map[*jfr.Method]int32
	fnByName  map[string]int32
	locByKey  map[chunkLocKey]int32
	stackLocs map[uint64][]int32
	samples   [groups][]*psample
	table     sampleTable

	events, outOfRange, noStack [groups]int
	err                         error
}

type fnDesc struct{ name, sys string }

type locDesc struct {
	fn   int32
	line int64
}

type chunkLocKey struct {
	m    *jfr.Method
	line int32
	typ  string
}

// psample is a chunk-local sample: chunk-local location indexes, leaf
// first.
type psample struct {
	locs   []int32
	v0, v1 int64
	thread *jfr.Thread
	group  uint8
}

// convertChunk converts one chunk. It never touches shared state.
func convertChunk(c *jfr.Chunk, opt Options, recordStart int64) *partial {
	p := &partial{
		index:     c.Index,
		asprof:    c.Producer == jfr.ProducerAsyncProfiler,
		start:     c.Header.StartNanos,
		end:       c.Header.StartNanos + c.Header.DurationNanos,
		periods:   map[string]int64{},
		fnByMeth:  map[*jfr.Method]int32{},
		fnByName:  map[string]int32{},
		locByKey:  map[chunkLocKey]int32{},
		stackLocs: map[uint64][]int32{},
	}
	var byID []*typeInfo
	infos := map[*jfr.Type]*typeInfo{}
	for _, t := range c.Metadata.Types {
		if !t.IsEvent() {
			continue
		}
		h, valueField := handlerFor(opt.Event, t)
		if t.Name == "jdk.ActiveSetting" {
			h = hSetting
		}
		if h == hNone {
			continue
		}
		ti := &typeInfo{h: h, value: -1, class: -1}
		if valueField != "" {
			ti.value = t.FieldIndex(valueField)
		}
		if f, ok := leafClassField[t.Name]; ok {
			if i := t.FieldIndex(f); i >= 0 && t.Fields[i].ConstantPool && t.Fields[i].Type.Name == "java.lang.Class" {
				ti.class = i
			}
		}
		infos[t] = ti
		if t.ID < 1<<12 {
			for uint64(len(byID)) <= t.ID {
				byID = append(byID, nil)
			}
			byID[t.ID] = ti
		}
	}
	from, to := window(opt, recordStart)
	windowed := opt.From != "" || opt.To != ""
	for c.Next() {
		ev := c.Event()
		var ti *typeInfo
		if id := ev.Type.ID; id < uint64(len(byID)) {
			ti = byID[id]
		} else {
			ti = infos[ev.Type]
		}
		if ti == nil {
			continue
		}
		if ti.h == hSetting {
			// Only the merge needs the intervals, so settings are read
			// in the same pass wherever they are in the chunk.
			p.setting(c, ev)
			continue
		}
		g := uint8(groupMain)
		if ti.h == hExec {
			g = groupExec
		}
		if windowed {
			if start := ev.Start(); start < from || start >= to {
				p.outOfRange[g]++
				continue
			}
		}
		var v0, v1 int64 = 1, 0
		switch ti.h {
		case hWall:
			v0 = int64(uint32(ev.RawAt(ti.value))) // samples is unsigned
		case hDuration:
			v1 = ev.Duration()
		case hValue:
			if ti.value >= 0 {
				v1 = int64(ev.RawAt(ti.value))
			}
		}
		if err := ev.Err(); err != nil {
			p.err = err
			return p
		}
		k := sampleKey{stack: ev.StackID(), thread: ev.ThreadID(), group: uint64(g)}
		if ti.class >= 0 {
			k.class = ev.RawAt(ti.class) + 1 // 0: no class
		}
		s := p.table.get(k)
		if s == nil {
			s = p.newSample(c, k, opt.Threads)
			p.table.put(k, s)
			p.samples[g] = append(p.samples[g], s)
		}
		s.v0 += v0
		s.v1 += v1
		p.events[g]++
	}
	p.err = c.Err()
	return p
}

// setting reads one jdk.ActiveSetting event: async-profiler's engine and
// intervals, the JDK's sampling periods per event type.
func (p *partial) setting(c *jfr.Chunk, ev *jfr.Event) {
	name, _ := ev.String("name")
	value, _ := ev.String("value")
	if p.asprof {
		switch name {
		case "engine":
			p.engine, p.hasEngine = value, true
		case "interval":
			p.interval, _ = strconv.ParseInt(value, 10, 64)
			p.hasIntv = true
		case "wall":
			p.wall, _ = strconv.ParseInt(value, 10, 64)
			p.hasWall = true
		}
		return
	}
	if name == "period" {
		if id, ok := ev.Int("id"); ok {
			if t := c.Metadata.TypeByID(uint64(id)); t != nil {
				if ns, ok := jfr.ParseSettingDuration(value); ok {
					p.periods[t.Name] = ns
				}
			}
		}
	}
}

// window turns the time bounds into absolute epoch ns.
func window(opt Options, recordStart int64) (int64, int64) {
	from, to := int64(-1<<63), int64(1<<63-1)
	if b, _ := parseBound(opt.From); b.set {
		from = b.ns
		if b.relative {
			from += recordStart
		}
	}
	if b, _ := parseBound(opt.To); b.set {
		to = b.ns
		if b.relative {
			to += recordStart
		}
	}
	return from, to
}

func (p *partial) newSample(c *jfr.Chunk, k sampleKey, threads bool) *psample {
	s := &psample{group: uint8(k.group)}
	if k.class != 0 {
		if cl := c.Class(k.class - 1); cl != nil {
			s.locs = append(s.locs, p.synthetic(cl.Name))
		}
	}
	st, ok := p.stackLocs[k.stack]
	if !ok {
		if stack := c.Stack(k.stack); stack != nil {
			st = make([]int32, len(stack.Frames))
			for i := range stack.Frames {
				st[i] = p.frameLoc(&stack.Frames[i])
			}
		}
		p.stackLocs[k.stack] = st
	}
	if st == nil {
		p.noStack[k.group]++
		s.locs = append(s.locs, p.synthetic("[no stack]"))
	}
	s.locs = append(s.locs, st...)
	s.thread = c.Thread(k.thread)
	if threads {
		s.locs = append(s.locs, p.synthetic(threadFrame(s.thread)))
	}
	return s
}

func threadFrame(th *jfr.Thread) string {
	if th == nil {
		return "[unknown thread]"
	}
	return fmt.Sprintf("[%s tid=%d]", th.Name(), th.OSThreadID)
}

// frameLoc returns the chunk-local location of a frame, deduplicated by
// the method's JFR id (the *jfr.Method is unique per id in a chunk).
func (p *partial) frameLoc(f *jfr.Frame) int32 {
	ck := chunkLocKey{m: f.Method, line: f.Line, typ: f.Type}
	if l, ok := p.locByKey[ck]; ok {
		return l
	}
	fn, ok := p.fnByMeth[f.Method]
	if !ok {
		// One naming convention for every lockscope profile.
		name, sys, _ := pprofbuild.FrameName(f)
		fn = int32(len(p.funcs))
		p.funcs = append(p.funcs, fnDesc{name, sys})
		p.fnByMeth[f.Method] = fn
	}
	l := int32(len(p.locs))
	p.locs = append(p.locs, locDesc{fn: fn, line: int64(f.Line)})
	p.locByKey[ck] = l
	return l
}

// synthetic is a frame that is not a method: a class name, a thread.
func (p *partial) synthetic(name string) int32 {
	fn, ok := p.fnByName[name]
	if !ok {
		fn = int32(len(p.funcs))
		p.funcs = append(p.funcs, fnDesc{name, name})
		p.fnByName[name] = fn
	}
	ck := chunkLocKey{line: -1, typ: name}
	if l, ok := p.locByKey[ck]; ok {
		return l
	}
	l := int32(len(p.locs))
	p.locs = append(p.locs, locDesc{fn: fn})
	p.locByKey[ck] = l
	return l
}
