package jfr

import (
	"strconv"
	"strings"
)

// Type is a class declared in a chunk's metadata: an event type, a
// constant-pool type (java.lang.Thread, jdk.types.StackTrace, ...), a struct
// nested in other types, or a primitive. Types belong to one chunk: the same
// name can have another ID in the next chunk.
type Type struct {
	ID          uint64
	Name        string
	SuperType   string // "jdk.jfr.Event" for event types
	SimpleType  bool
	Fields      []Field
	Annotations []Annotation
	Settings    []Setting

	kind   kind
	common commonFields
	ops    []op // per field, for the chunk's integer encoding
	// varints is how many leading fields are plain varints (compressed
	// integers and pool keys): decodeTo reads those in a tight loop.
	varints int
	// read is set once a field of an event of this type was decoded
	// on demand; Chunk.Next then decodes the common fields eagerly.
	read   bool
	byName map[string]int
}

// Field is one field of a Type, in the order its values are encoded.
type Field struct {
	Name         string
	Type         *Type
	ConstantPool bool // the value is a key into Type's constant pool
	Array        bool
	Annotations  []Annotation
}

// Annotation is an annotation on a type or field, e.g. jdk.jfr.Label with
// Values["value"], or jdk.jfr.Timespan with Values["value"] = "TICKS".
type Annotation struct {
	Type   string
	Values map[string]string
}

// Setting is a setting an event type declares (enabled, threshold, ...).
type Setting struct {
	Name, Type, DefaultValue string
}

// IsEvent reports whether events of this type can appear in the chunk.
func (t *Type) IsEvent() bool { return t.SuperType == "jdk.jfr.Event" }

// FieldIndex returns the index of the named field, or -1.
func (t *Type) FieldIndex(name string) int {
	if i, ok := t.byName[name]; ok {
		return i
	}
	return -1
}

// Annotation returns the annotation of the given type name, if present.
func (f *Field) Annotation(name string) (Annotation, bool) {
	for _, a := range f.Annotations {
		if a.Type == name {
			return a, true
		}
	}
	return Annotation{}, false
}

// kind is how a value of a type is encoded.
type kind uint8

const (
	kStruct kind = iota
	kBool
	kByte
	kChar
	kShort
	kInt
	kLong
	kFloat
	kDouble
	kString
)

var primitiveKinds = map[string]kind{
	"boolean": kBool, "byte": kByte, "char": kChar, "short": kShort, "int": kInt,
	"long": kLong, "float": kFloat, "double": kDouble, "java.lang.String": kString,
}

// op is how decode reads one top-level event field: the common shapes get
// a direct case, everything else goes through decoder.scalar.
type op uint8

const (
	opOther op = iota
	opVarint
	opByte
)

func compileOps(t *Type, compressed bool) []op {
	ops := make([]op, len(t.Fields))
	for i, f := range t.Fields {
		switch {
		case f.Array:
		case f.ConstantPool && compressed:
			ops[i] = opVarint
		case f.ConstantPool:
		case f.Type.kind == kBool || f.Type.kind == kByte:
			ops[i] = opByte
		case compressed && (f.Type.kind == kLong || f.Type.kind == kInt || f.Type.kind == kShort || f.Type.kind == kChar):
			// Values keep their raw bits; int and short are narrowed
			// when read through signed.
			ops[i] = opVarint
		}
	}
	t.varints = 0
	for t.varints < len(ops) && ops[t.varints] == opVarint {
		t.varints++
	}
	return ops
}

// commonFields caches the indexes of the fields lockscope reads on hot paths,
// so that typed views do not look names up per event. -1 means absent.
type commonFields struct {
	start, duration, thread, stack int
	prefix                         int // 1 + the largest of them
}

// Metadata is a chunk's type system, from its metadata event.
type Metadata struct {
	Types  []*Type
	byID   map[uint64]*Type
	byName map[string]*Type
}

// Type returns the type with the given name, or nil.
func (m *Metadata) Type(name string) *Type { return m.byName[name] }

// TypeByID returns the type with the given chunk-local id, or nil.
func (m *Metadata) TypeByID(id uint64) *Type { return m.byID[id] }

// element is a node of the metadata event's element tree.
type element struct {
	name     string
	attrs    map[string]string
	children []*element
}

// parseMetadata decodes the metadata event at d.pos (its size field).
func parseMetadata(d *decoder) (*Metadata, error) {
	start := d.pos
	size := d.i32()
	end := start + int(size)
	if d.err != nil || size <= 0 || end > len(d.b) || end < start {
		return nil, corruptf("metadata event size %d at chunk offset %d", size, start)
	}
	sub := &decoder{b: d.b[:end], pos: d.pos, compressed: d.compressed}
	if typ := sub.i64(); typ != 0 {
		return nil, corruptf("metadata offset points to an event of type %d", typ)
	}
	sub.i64() // start time
	sub.i64() // duration
	sub.i64() // metadata id
	n := sub.count(1)
	strs := make([]string, n)
	for i := range strs {
		s, _, isRef, _ := sub.rawString()
		if isRef {
			return nil, corruptf("metadata string %d is a constant-pool reference", i)
		}
		strs[i] = s
	}
	if sub.err != nil {
		return nil, sub.err
	}
	root, err := parseElement(sub, strs, 0)
	if err != nil {
		return nil, err
	}
	return buildMetadata(root)
}

func parseElement(d *decoder, strs []string, depth int) (*element, error) {
	if depth > 64 {
		return nil, corruptf("metadata elements nested deeper than 64")
	}
	str := func() string {
		i := d.i32()
		if i < 0 || int(i) >= len(strs) {
			d.fail(corruptf("metadata string index %d out of %d", i, len(strs)))
			return ""
		}
		return strs[i]
	}
	e := &element{name: str()}
	na := d.count(2)
	if na > 0 {
		e.attrs = make(map[string]string, na)
	}
	for i := 0; i < na; i++ {
		k := str()
		e.attrs[k] = str()
	}
	nc := d.count(3)
	if d.err != nil {
		return nil, d.err
	}
	e.children = make([]*element, 0, nc)
	for i := 0; i < nc; i++ {
		c, err := parseElement(d, strs, depth+1)
		if err != nil {
			return nil, err
		}
		e.children = append(e.children, c)
	}
	return e, d.err
}

func annotations(e *element, m *Metadata, pending *[]func()) []Annotation {
	var out []Annotation
	for _, c := range e.children {
		if c.name != "annotation" {
			continue
		}
		a := Annotation{Values: map[string]string{}}
		for k, v := range c.attrs {
			if k == "class" {
				continue
			}
			a.Values[k] = v
		}
		out = append(out, a)
		i := len(out) - 1
		cls := c.attrs["class"]
		res := &out
		*pending = append(*pending, func() {
			id, _ := strconv.ParseUint(cls, 10, 64)
			if t := m.byID[id]; t != nil {
				(*res)[i].Type = t.Name
			}
		})
	}
	return out
}

func buildMetadata(root *element) (*Metadata, error) {
	m := &Metadata{byID: map[uint64]*Type{}, byName: map[string]*Type{}}
	var classes []*element
	for _, c := range root.children {
		if c.name == "metadata" {
			for _, cc := range c.children {
				if cc.name == "class" {
					classes = append(classes, cc)
				}
			}
		}
	}
	var pending []func()
	for _, c := range classes {
		id, err := strconv.ParseUint(c.attrs["id"], 10, 64)
		if err != nil {
			return nil, corruptf("metadata class %q has id %q", c.attrs["name"], c.attrs["id"])
		}
		t := &Type{ID: id, Name: c.attrs["name"], SuperType: c.attrs["superType"], SimpleType: c.attrs["simpleType"] == "true"}
		if k, ok := primitiveKinds[t.Name]; ok {
			t.kind = k
		}
		if _, dup := m.byID[id]; dup {
			return nil, corruptf("metadata declares class id %d twice", id)
		}
		m.byID[id] = t
		m.byName[t.Name] = t
		m.Types = append(m.Types, t)
	}
	for i, c := range classes {
		t := m.Types[i]
		t.Annotations = annotations(c, m, &pending)
		for _, f := range c.children {
			switch f.name {
			case "field":
				tid, err := strconv.ParseUint(f.attrs["class"], 10, 64)
				ft := m.byID[tid]
				if err != nil || ft == nil {
					return nil, corruptf("field %s.%s has unknown class %q", t.Name, f.attrs["name"], f.attrs["class"])
				}
				t.Fields = append(t.Fields, Field{
					Name:         f.attrs["name"],
					Type:         ft,
					ConstantPool: f.attrs["constantPool"] == "true",
					Array:        f.attrs["dimension"] == "1",
					Annotations:  annotations(f, m, &pending),
				})
			case "setting":
				t.Settings = append(t.Settings, Setting{Name: f.attrs["name"], Type: f.attrs["class"], DefaultValue: f.attrs["defaultValue"]})
			}
		}
		if t.kind != kStruct && len(t.Fields) > 0 {
			// A primitive name with fields would be decoded as a primitive
			// and desynchronise everything after it.
			return nil, corruptf("primitive type %s declares fields", t.Name)
		}
	}
	for _, p := range pending {
		p()
	}
	// Struct values are encoded inline, so a type that contains itself
	// without a constant-pool indirection cannot be decoded: reject it
	// here so that decoding needs no depth limit.
	state := map[*Type]uint8{}
	var visit func(t *Type) bool
	visit = func(t *Type) bool {
		switch state[t] {
		case 1:
			return false
		case 2:
			return true
		}
		state[t] = 1
		for _, f := range t.Fields {
			if !f.ConstantPool && f.Type.kind == kStruct && !visit(f.Type) {
				return false
			}
		}
		state[t] = 2
		return true
	}
	for _, t := range m.Types {
		if !visit(t) {
			return nil, corruptf("type %s contains itself inline", t.Name)
		}
		t.byName = make(map[string]int, len(t.Fields))
		for i, f := range t.Fields {
			if _, dup := t.byName[f.Name]; !dup {
				t.byName[f.Name] = i
			}
		}
		t.common = commonFields{start: t.FieldIndex("startTime"), duration: t.FieldIndex("duration"), thread: -1, stack: -1}
		for _, n := range []string{"eventThread", "sampledThread"} {
			if i := t.FieldIndex(n); i >= 0 && t.common.thread < 0 && isRefTo(t.Fields[i], "java.lang.Thread") {
				t.common.thread = i
			}
		}
		if i := t.FieldIndex("stackTrace"); i >= 0 && isRefTo(t.Fields[i], "jdk.types.StackTrace") {
			t.common.stack = i
		}
		if i := t.common.start; i >= 0 && (t.Fields[i].Array || t.Fields[i].Type.kind != kLong) {
			t.common.start = -1
		}
		if i := t.common.duration; i >= 0 && (t.Fields[i].Array || t.Fields[i].Type.kind != kLong) {
			t.common.duration = -1
		}
		t.common.prefix = 1 + max(t.common.start, t.common.duration, t.common.thread, t.common.stack)
	}
	return m, nil
}

func isRefTo(f Field, name string) bool {
	return f.ConstantPool && !f.Array && f.Type.Name == name
}

// internalToDotted turns java/lang/Thread into java.lang.Thread.
func internalToDotted(s string) string {
	if strings.IndexByte(s, '/') < 0 {
		return s
	}
	return strings.ReplaceAll(s, "/", ".")
}
