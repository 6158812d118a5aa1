package jfr

// skip advances past one value of field f (array or not).
func (d *decoder) skipField(f *Field) {
	if !f.Array {
		d.skipOne(f.Type, f.ConstantPool)
		return
	}
	n := d.count(1)
	for i := 0; i < n && d.err == nil; i++ {
		d.skipOne(f.Type, f.ConstantPool)
	}
}

// skipOne advances past one element of type t. Metadata validation ruled out
// inline cycles, so the recursion depth is bounded by the type graph.
func (d *decoder) skipOne(t *Type, cp bool) {
	if cp {
		d.i64()
		return
	}
	switch t.kind {
	case kBool, kByte:
		d.pos++
		if d.pos > len(d.b) {
			d.fail(errShort)
		}
	case kChar, kShort:
		if d.compressed {
			d.varint()
		} else {
			d.fixed(2)
		}
	case kInt:
		d.i32()
	case kLong:
		d.i64()
	case kFloat:
		d.fixed(4)
	case kDouble:
		d.fixed(8)
	case kString:
		d.skipString()
	default:
		for i := range t.Fields {
			d.skipField(&t.Fields[i])
		}
	}
}

// scalar reads one non-array field and returns its raw bits: the value of
// integers, booleans and pool keys, the IEEE bits of floats, and for strings
// and structs the chunk offset where the value starts (decoded on demand).
func (d *decoder) scalar(f *Field) uint64 {
	if f.Array {
		p := d.pos
		d.skipField(f)
		return uint64(p)
	}
	if f.ConstantPool {
		return uint64(d.i64())
	}
	switch f.Type.kind {
	case kBool, kByte:
		return uint64(d.u8())
	case kChar, kShort:
		if d.compressed {
			return uint64(uint16(d.varint()))
		}
		return d.fixed(2)
	case kInt:
		return uint64(uint32(d.i32()))
	case kLong:
		return uint64(d.i64())
	case kFloat:
		return d.fixed(4)
	case kDouble:
		return d.fixed(8)
	default:
		p := d.pos
		d.skipOne(f.Type, false)
		return uint64(p)
	}
}

// signed interprets raw bits of an integral field as a signed number.
func signed(k kind, v uint64) int64 {
	switch k {
	case kByte:
		return int64(int8(v))
	case kShort:
		return int64(int16(v))
	case kInt:
		return int64(int32(v))
	case kChar, kBool:
		return int64(v)
	}
	return int64(v)
}
