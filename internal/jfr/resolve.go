package jfr

import "math/bits"

// Stack is a resolved stack trace, innermost frame first.
type Stack struct {
	ID        uint64 // chunk-local pool key
	Truncated bool   // the producer cut the stack at its depth limit
	Frames    []Frame
}

// Frame is one frame of a Stack.
type Frame struct {
	Method *Method
	Line   int32 // source line, 0 when unknown
	BCI    int32 // bytecode index, 0 or -1 for native frames
	// Type is the producer's frame type: "Interpreted", "JIT compiled",
	// "Inlined", "C1 compiled", "Native", "C++", "Kernel".
	Type string
}

// Method is a resolved jdk.types.Method.
type Method struct {
	ID         uint64 // chunk-local pool key
	Class      *Class // nil for frames without a class (kernel functions)
	Name       string
	Descriptor string
	Modifiers  int32
	Hidden     bool
}

// FullName is "pkg.Class.method", or the bare name when there is no class
// name (native and kernel functions).
func (m *Method) FullName() string {
	if m == nil {
		return "<unknown>"
	}
	if m.Class == nil || m.Class.Name == "" {
		return m.Name
	}
	return m.Class.Name + "." + m.Name
}

// Class is a resolved java.lang.Class. Names use dots (java.lang.Thread),
// whatever form the recording stores.
type Class struct {
	ID        uint64 // chunk-local pool key
	Name      string
	Package   string
	Modifiers int32
	Hidden    bool
}

// Thread is a resolved java.lang.Thread. OSThreadID is the host OS thread id
// (what eBPF and perf see); JavaName is empty for JVM-internal threads.
type Thread struct {
	ID           uint64 // chunk-local pool key
	OSName       string
	OSThreadID   int64
	JavaName     string
	JavaThreadID int64
	Virtual      bool
}

// Name is the Java name when there is one, else the OS name.
func (t *Thread) Name() string {
	if t == nil {
		return ""
	}
	if t.JavaName != "" {
		return t.JavaName
	}
	return t.OSName
}

// TicksToNanos converts a duration in ticks to nanoseconds.
func (c *Chunk) TicksToNanos(ticks int64) int64 {
	tps := c.Header.TicksPerSecond
	if tps == 1e9 {
		return ticks
	}
	neg := ticks < 0
	u := uint64(ticks)
	if neg {
		u = -u
	}
	hi, lo := bits.Mul64(u, 1e9)
	if hi >= uint64(tps) {
		return ticks // would overflow: the recording is nonsense anyway
	}
	q, _ := bits.Div64(hi, lo, uint64(tps))
	if neg {
		return -int64(q)
	}
	return int64(q)
}

// EpochNanos converts a tick timestamp to Unix epoch nanoseconds:
// StartNanos + (ticks - StartTicks) converted to ns.
func (c *Chunk) EpochNanos(ticks int64) int64 {
	return c.Header.StartNanos + c.TicksToNanos(ticks-c.Header.StartTicks)
}

// MonotonicNanos converts a tick timestamp to CLOCK_MONOTONIC nanoseconds
// when the producer's ticks are that clock: async-profiler chunks with 1e9
// ticks per second. For JDK chunks (ticks count from JVM start) it returns
// false; convert EpochNanos with a (monotonic, realtime) pair sampled on
// the same host instead: mono = epoch - (realtime - monotonic).
func (c *Chunk) MonotonicNanos(ticks int64) (int64, bool) {
	if c.Producer == ProducerAsyncProfiler && c.Header.TicksPerSecond == 1e9 {
		return ticks, true
	}
	return 0, false
}

// fieldsAt decodes the top-level fields of a struct value of type t at off,
// appending their raw bits to dst.
func (c *Chunk) fieldsAt(t *Type, off int, dst []uint64) ([]uint64, bool) {
	d := decoder{b: c.buf, pos: off, compressed: c.d.compressed}
	for i := range t.Fields {
		dst = append(dst, d.scalar(&t.Fields[i]))
	}
	return dst, d.err == nil
}

// poolValue returns the pool of type t and the chunk offset of key's value.
func (c *Chunk) poolValue(t *Type, key uint64) (*pool, int, int) {
	p := c.pools[t.ID]
	s := p.slot(key)
	if s < 0 {
		return p, s, -1
	}
	return p, s, int(p.offs[s])
}

// str resolves a string-valued field: an inline string, a string pool
// reference, or a reference to a struct with a string (jdk.types.Symbol,
// jdk.types.FrameType, jdk.types.ThreadState...), whose first string
// field is taken. Missing values give "".
func (c *Chunk) str(f *Field, raw uint64) string { return c.strd(f, raw, 0) }

// maxLabelDepth bounds how many pool references a string label follows; a
// corrupt recording can make them cycle.
const maxLabelDepth = 3

func (c *Chunk) strd(f *Field, raw uint64, depth int) string {
	if f.Array || depth > maxLabelDepth {
		return ""
	}
	if !f.ConstantPool {
		if f.Type.kind == kString {
			return c.inlineString(int(raw))
		}
		if f.Type.kind == kStruct {
			return c.labelAt(f.Type, int(raw), depth)
		}
		return ""
	}
	p, s, off := c.poolValue(f.Type, raw)
	if s < 0 {
		return ""
	}
	cache := p.strs
	if cache == nil {
		cache = make([]*string, len(p.keys))
		p.strs = cache
	}
	if v := cache[s]; v != nil {
		return *v
	}
	var v string
	switch f.Type.kind {
	case kString:
		v = c.inlineString(off)
	case kStruct:
		v = c.labelAt(f.Type, off, depth)
	}
	cache[s] = &v
	return v
}

func (c *Chunk) inlineString(off int) string {
	d := decoder{b: c.buf, pos: off, compressed: c.d.compressed}
	s, ref, isRef, _ := d.rawString()
	if isRef {
		if t := c.Metadata.Type("java.lang.String"); t != nil {
			_, sl, o := c.poolValue(t, ref)
			if sl >= 0 {
				d := decoder{b: c.buf, pos: o, compressed: c.d.compressed}
				s, _, isRef, _ = d.rawString()
				if isRef {
					return ""
				}
				return s
			}
		}
		return ""
	}
	return s
}

// labelAt returns the first string field of a struct value.
func (c *Chunk) labelAt(t *Type, off, depth int) string {
	if depth > maxLabelDepth {
		return ""
	}
	var a [8]uint64
	vals, ok := c.fieldsAt(t, off, a[:0])
	if !ok {
		return ""
	}
	for i := range t.Fields {
		f := &t.Fields[i]
		if f.Array {
			continue
		}
		if f.Type.kind == kString || f.ConstantPool && f.Type.kind == kStruct {
			if s := c.strd(f, vals[i], depth+1); s != "" || f.Type.kind == kString {
				return s
			}
		}
	}
	return ""
}

// fieldIdx returns the index of name in t if it has the wanted shape.
func fieldIdx(t *Type, name string) int {
	return t.FieldIndex(name)
}

func (c *Chunk) intField(t *Type, vals []uint64, name string) int64 {
	i := t.FieldIndex(name)
	if i < 0 || t.Fields[i].Array || t.Fields[i].ConstantPool {
		return 0
	}
	return signed(t.Fields[i].Type.kind, vals[i])
}

func (c *Chunk) strField(t *Type, vals []uint64, name string) string {
	i := t.FieldIndex(name)
	if i < 0 {
		return ""
	}
	return c.str(&t.Fields[i], vals[i])
}

// Thread resolves a java.lang.Thread pool key; nil when absent.
func (c *Chunk) Thread(key uint64) *Thread {
	// Resolved threads are kept by key too when the pool's keys are
	// dense: one load for the per-event lookup, and small enough to inline.
	if key < uint64(len(c.threadByKey)) && c.threadByKey[key] != nil {
		return c.threadByKey[key]
	}
	return c.thread(key)
}

func (c *Chunk) thread(key uint64) *Thread {
	s := c.threadPool.slot(key)
	if s < 0 {
		return nil
	}
	if th := c.threads[s]; th != nil {
		return th
	}
	t := c.threadPool.typ
	var a [8]uint64
	vals, ok := c.fieldsAt(t, int(c.threadPool.offs[s]), a[:0])
	if !ok {
		return nil
	}
	th := &Thread{
		ID:           key,
		OSName:       c.strField(t, vals, "osName"),
		OSThreadID:   c.intField(t, vals, "osThreadId"),
		JavaName:     c.strField(t, vals, "javaName"),
		JavaThreadID: c.intField(t, vals, "javaThreadId"),
		Virtual:      c.intField(t, vals, "virtual") != 0,
	}
	c.threads[s] = th
	if key < uint64(len(c.threadByKey)) {
		c.threadByKey[key] = th
	}
	return th
}

// Class resolves a java.lang.Class pool key; nil when absent.
func (c *Chunk) Class(key uint64) *Class {
	s := c.classPool.slot(key)
	if s < 0 {
		return nil
	}
	if cl := c.classes[s]; cl != nil {
		return cl
	}
	t := c.classPool.typ
	var a [8]uint64
	vals, ok := c.fieldsAt(t, int(c.classPool.offs[s]), a[:0])
	if !ok {
		return nil
	}
	cl := &Class{
		ID:        key,
		Name:      internalToDotted(c.strField(t, vals, "name")),
		Package:   internalToDotted(c.strField(t, vals, "package")),
		Modifiers: int32(c.intField(t, vals, "modifiers")),
		Hidden:    c.intField(t, vals, "hidden") != 0,
	}
	c.classes[s] = cl
	return cl
}

// Method resolves a jdk.types.Method pool key; nil when absent.
func (c *Chunk) Method(key uint64) *Method {
	s := c.methodPool.slot(key)
	if s < 0 {
		return nil
	}
	if m := c.methods[s]; m != nil {
		return m
	}
	t := c.methodPool.typ
	var a [8]uint64
	vals, ok := c.fieldsAt(t, int(c.methodPool.offs[s]), a[:0])
	if !ok {
		return nil
	}
	m := &Method{
		ID:         key,
		Name:       c.strField(t, vals, "name"),
		Descriptor: c.strField(t, vals, "descriptor"),
		Modifiers:  int32(c.intField(t, vals, "modifiers")),
		Hidden:     c.intField(t, vals, "hidden") != 0,
	}
	if i := t.FieldIndex("type"); i >= 0 && isRefTo(t.Fields[i], "java.lang.Class") {
		m.Class = c.Class(vals[i])
	}
	c.methods[s] = m
	return m
}

// Stack resolves a jdk.types.StackTrace pool key; nil when absent (events
// recorded without a stack carry key 0). The first call decodes the frames;
// later calls return the same *Stack.
func (c *Chunk) Stack(key uint64) *Stack {
	if key < uint64(len(c.stackByKey)) && c.stackByKey[key] != nil {
		return c.stackByKey[key]
	}
	return c.stack(key)
}

func (c *Chunk) stack(key uint64) *Stack {
	s := c.stackPool.slot(key)
	if s < 0 {
		return nil
	}
	if st := c.stacks[s]; st != nil {
		return st
	}
	st := c.decodeStack(key, int(c.stackPool.offs[s]))
	if st != nil {
		c.stacks[s] = st
		if key < uint64(len(c.stackByKey)) {
			c.stackByKey[key] = st
		}
	}
	return st
}

func (c *Chunk) decodeStack(key uint64, off int) *Stack {
	t := c.stackPool.typ
	var a [4]uint64
	vals, ok := c.fieldsAt(t, off, a[:0])
	if !ok {
		return nil
	}
	st := &Stack{ID: key, Truncated: c.intField(t, vals, "truncated") != 0}
	fi := t.FieldIndex("frames")
	if fi < 0 || !t.Fields[fi].Array || t.Fields[fi].ConstantPool {
		return st
	}
	ft := t.Fields[fi].Type
	iMethod, iLine, iBCI, iType := fieldIdx(ft, "method"), fieldIdx(ft, "lineNumber"), fieldIdx(ft, "bytecodeIndex"), fieldIdx(ft, "type")
	d := decoder{b: c.buf, pos: int(vals[fi]), compressed: c.d.compressed}
	n := d.count(len(ft.Fields))
	st.Frames = make([]Frame, n)
	var fv [8]uint64
	for k := 0; k < n; k++ {
		v := fv[:0]
		for i := range ft.Fields {
			v = append(v, d.scalar(&ft.Fields[i]))
		}
		if d.err != nil {
			return nil
		}
		fr := &st.Frames[k]
		if iMethod >= 0 && isRefTo(ft.Fields[iMethod], "jdk.types.Method") {
			fr.Method = c.Method(v[iMethod])
		}
		if iLine >= 0 {
			fr.Line = int32(signed(ft.Fields[iLine].Type.kind, v[iLine]))
		}
		if iBCI >= 0 {
			fr.BCI = int32(signed(ft.Fields[iBCI].Type.kind, v[iBCI]))
		}
		if iType >= 0 {
			fr.Type = c.str(&ft.Fields[iType], v[iType])
		}
	}
	return st
}
