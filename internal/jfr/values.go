package jfr

// Kind is the kind of a generic Value.
type Kind uint8

const (
	KindNull   Kind = iota // null string, or a pool key the chunk does not define
	KindBool               // Int is 0 or 1
	KindInt                // byte, short, char, int, long (Int)
	KindFloat              // float, double (Float)
	KindString             // Str
	KindStruct             // Fields, named by Type.Fields
	KindArray              // Elems
)

// Value is one field value decoded generically, with constant-pool
// references resolved (Key keeps the reference's pool key). It is how
// custom events (lockscope.ProduceRequest) and types without a typed view
// are read.
type Value struct {
	Kind   Kind
	Type   *Type
	Int    int64
	Float  float64
	Str    string
	Fields []Value
	Elems  []Value
	Key    uint64 // pool key, when the value came from a constant pool
	Ref    bool   // the value was a constant-pool reference
}

// Field returns the struct field of that name, or a null Value.
func (v Value) Field(name string) Value {
	if v.Kind != KindStruct || v.Type == nil {
		return Value{}
	}
	if i := v.Type.FieldIndex(name); i >= 0 && i < len(v.Fields) {
		return v.Fields[i]
	}
	return Value{}
}

// maxDepth bounds how many constant-pool references a generic value
// follows (java.lang.Class -> jdk.types.ClassLoader -> java.lang.Class ...
// can go on, and a corrupt recording can make it cycle); maxValues bounds
// the values one call decodes, since fan-out times depth could still
// explode on a crafted recording.
const (
	maxDepth  = 8
	maxValues = 1 << 16
)

// Values decodes every field of the event generically, in the order of
// e.Type.Fields. It allocates; typed views and accessors are the fast path.
func (e *Event) Values() []Value {
	if !e.decode() {
		return nil
	}
	d := decoder{b: e.c.buf[:e.end], pos: e.payload, compressed: e.c.d.compressed}
	e.c.budget = maxValues
	out := make([]Value, len(e.Type.Fields))
	for i := range e.Type.Fields {
		out[i] = e.c.readField(&d, &e.Type.Fields[i], 0)
	}
	return out
}

// Value decodes the named field generically.
func (e *Event) Value(name string) (Value, bool) {
	i := e.Type.FieldIndex(name)
	if i < 0 {
		return Value{}, false
	}
	vs := e.Values()
	if vs == nil {
		return Value{}, false
	}
	return vs[i], true
}

func (c *Chunk) readField(d *decoder, f *Field, depth int) Value {
	if !f.Array {
		return c.readOne(d, f.Type, f.ConstantPool, depth)
	}
	n := d.count(1)
	v := Value{Kind: KindArray, Type: f.Type, Elems: make([]Value, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		v.Elems = append(v.Elems, c.readOne(d, f.Type, f.ConstantPool, depth))
	}
	return v
}

func (c *Chunk) readOne(d *decoder, t *Type, cp bool, depth int) Value {
	if cp {
		key := uint64(d.i64())
		v := c.poolEntry(t, key, depth)
		v.Key, v.Ref = key, true
		return v
	}
	v := Value{Type: t}
	switch t.kind {
	case kBool:
		v.Kind, v.Int = KindBool, int64(d.u8()&1)
	case kByte:
		v.Kind, v.Int = KindInt, int64(int8(d.u8()))
	case kChar, kShort:
		var raw uint64
		if d.compressed {
			raw = d.varint()
		} else {
			raw = d.fixed(2)
		}
		v.Kind = KindInt
		if t.kind == kChar {
			v.Int = int64(uint16(raw))
		} else {
			v.Int = int64(int16(raw))
		}
	case kInt:
		v.Kind, v.Int = KindInt, int64(d.i32())
	case kLong:
		v.Kind, v.Int = KindInt, d.i64()
	case kFloat:
		v.Kind, v.Float = KindFloat, f32(d.fixed(4))
	case kDouble:
		v.Kind, v.Float = KindFloat, f64(d.fixed(8))
	case kString:
		s, ref, isRef, isNull := d.rawString()
		switch {
		case isRef:
			if st := c.Metadata.Type("java.lang.String"); st != nil {
				r := c.poolEntry(st, ref, depth)
				r.Key, r.Ref = ref, true
				return r
			}
		case !isNull:
			v.Kind, v.Str = KindString, s
		}
	default:
		v.Kind = KindStruct
		v.Fields = make([]Value, len(t.Fields))
		for i := range t.Fields {
			v.Fields[i] = c.readField(d, &t.Fields[i], depth)
		}
	}
	return v
}

func (c *Chunk) poolEntry(t *Type, key uint64, depth int) Value {
	_, s, off := c.poolValue(t, key)
	if s < 0 || depth >= maxDepth || c.budget <= 0 {
		return Value{Type: t}
	}
	c.budget--
	d := decoder{b: c.buf, pos: off, compressed: c.d.compressed}
	return c.readOne(&d, t, false, depth+1)
}
