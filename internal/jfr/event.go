package jfr

import (
	"fmt"
	"math/bits"
)

// Event is the current event of a Chunk. Its field values are decoded on
// first access, by the chunk's own metadata. An Event is reused by
// Chunk.Next: do not keep it; keep what its accessors return.
type Event struct {
	Type *Type

	c                 *Chunk
	off, payload, end int
	vals              []uint64
	ndec              int // fields decoded so far
	pos               int // chunk offset of field ndec
	bad               bool
}

// Chunk is the chunk the event belongs to (for time conversion and pool
// lookups).
func (e *Event) Chunk() *Chunk { return e.c }

// Offset is the event's byte offset in the recording.
func (e *Event) Offset() int64 { return e.c.Offset + int64(e.off) }

// Size is the event's size in bytes, header included.
func (e *Event) Size() int { return e.end - e.off }

// decode decodes every field; it reports false for a corrupt event.
func (e *Event) decode() bool {
	if e.ndec < len(e.Type.Fields) {
		e.decodeTo(len(e.Type.Fields))
	}
	return !e.bad
}

// decodeTo decodes fields up to (not including) n, continuing where the
// last call stopped: the common fields (start, duration, thread, stack)
// come first in every producer's events, so a pass that needs only those
// never decodes the rest.
func (e *Event) decodeTo(n int) {
	t := e.Type
	t.read = true
	if e.ndec == 0 {
		nf := len(t.Fields)
		if cap(e.vals) < nf {
			e.vals = make([]uint64, nf, nf+8)
		}
		e.vals = e.vals[:nf]
		e.pos = e.payload
	}
	vals := e.vals
	if e.ndec == 0 && n <= t.varints && e.payload+9*n <= len(e.c.buf) {
		e.decodeVarints(n)
		return
	}
	// Read from the whole chunk so that word loads work up to the event's
	// end; overrunning the event is caught below.
	b, p := e.c.buf, e.pos
	var err error
	for i := e.ndec; i < n; i++ {
		switch t.ops[i] {
		case opVarint:
			// Values of up to three bytes (type ids, pool keys, small
			// numbers) without a call; longer ones gather a word.
			if uint(p+2) < uint(len(b)) {
				c := b[p]
				if c < 0x80 {
					vals[i] = uint64(c)
					p++
					continue
				}
				c2 := b[p+1]
				if c2 < 0x80 {
					vals[i] = uint64(c&0x7f) | uint64(c2)<<7
					p += 2
					continue
				}
				// Three bytes: 16-bit stack ids and OS thread ids.
				if c3 := b[p+2]; c3 < 0x80 {
					vals[i] = uint64(c&0x7f) | uint64(c2&0x7f)<<7 | uint64(c3)<<14
					p += 3
					continue
				}
			}
			vals[i], p = uvarint(b, p)
			if p < 0 {
				p = len(b) + 1
			}
		case opByte:
			if uint(p) < uint(len(b)) {
				vals[i] = uint64(b[p])
			}
			p++
		default:
			if p > len(b) {
				break
			}
			d := decoder{b: b, pos: p, compressed: e.c.d.compressed}
			vals[i] = d.scalar(&t.Fields[i])
			p = d.pos
			if d.err != nil {
				err = d.err
			}
		}
	}
	e.pos, e.ndec = p, n
	if p > e.end && err == nil {
		err = errShort
	}
	if err != nil {
		clear(vals)
		e.ndec = len(vals)
		e.bad = true
		e.c.fail(e.off, fmt.Errorf("decoding %s event: %w", t.Name, err))
	}
}

// decodeVarints decodes the first n fields, all varints, with at least
// 9*n bytes of the chunk left (see varintsAt).
func (e *Event) decodeVarints(n int) {
	p := varintsAt(e.c.buf, e.payload, e.vals[:n])
	e.pos, e.ndec = p, n
	if p > e.end {
		clear(e.vals)
		e.ndec = len(e.vals)
		e.bad = true
		e.c.fail(e.off, fmt.Errorf("decoding %s event: %w", e.Type.Name, errShort))
	}
}

// varintsAt decodes len(vals) varints at b[p:], which must hold at least
// 9*len(vals) bytes, and returns the position after them. Each value is
// one 8-byte load, the position of its last byte (the first clear high
// bit) and a branch-free gather of the 7-bit groups: unlike a byte loop,
// no branch depends on a value's length, which for async-profiler's 16-bit
// stack ids and OS thread ids varies from event to event. (Finding several
// ends from the stop bits of one 16-byte window, to shorten the chain of
// dependent positions, measured slower: 459 against 398 ms/op.)
func varintsAt(b []byte, p int, vals []uint64) int {
	for i := range vals {
		x := le64(b, p)
		m := ^x & 0x8080808080808080
		if m == 0 {
			vals[i] = gather7(x) | uint64(b[p+8])<<56
			p += 9
			continue
		}
		z := uint(bits.TrailingZeros64(m)) // 8*len - 1
		vals[i] = gather7(x & (^uint64(0) >> (63 - z)))
		p += int(z+1) >> 3
	}
	return p
}

// raw returns the raw bits of field i, or 0 when the event is corrupt
// (decodeTo then zeroes every value).
func (e *Event) raw(i int) uint64 {
	// Small enough to inline: the accessors of a decoded field cost a
	// compare and a load.
	if uint(i) < uint(e.ndec) {
		return e.vals[i]
	}
	return e.rawSlow(i)
}

// rawSlow is kept out of line so that raw stays within the inlining budget.
//
//go:noinline
func (e *Event) rawSlow(i int) uint64 {
	if i < 0 {
		return 0
	}
	// Callers nearly always want several of the leading common fields:
	// decode them in one go.
	e.decodeTo(max(i+1, e.Type.common.prefix))
	return e.vals[i]
}

// RawAt returns the raw bits of field i of e.Type.Fields (an index from
// Type.FieldIndex, looked up once per chunk): the value of integers and
// booleans, the key of constant-pool references (resolve with Chunk.Class,
// Chunk.Thread...), the IEEE bits of floats. It is the fast path for hot
// loops; it returns 0 for an index out of range or a corrupt event.
func (e *Event) RawAt(i int) uint64 {
	if i >= len(e.Type.Fields) {
		return 0
	}
	return e.raw(i)
}

// StartTicks is the startTime field in ticks (0 when the type has none).
func (e *Event) StartTicks() int64 { return int64(e.raw(e.Type.common.start)) }

// DurationTicks is the duration field in ticks (0 for instant events).
func (e *Event) DurationTicks() int64 { return int64(e.raw(e.Type.common.duration)) }

// Start is the event's start in Unix epoch nanoseconds.
func (e *Event) Start() int64 { return e.c.EpochNanos(e.StartTicks()) }

// Duration is the event's duration in nanoseconds.
func (e *Event) Duration() int64 { return e.c.TicksToNanos(e.DurationTicks()) }

// ThreadID is the pool key of eventThread (or sampledThread), 0 if none.
func (e *Event) ThreadID() uint64 { return e.raw(e.Type.common.thread) }

// Thread resolves eventThread (or sampledThread for samples); nil if none.
func (e *Event) Thread() *Thread {
	if e.Type.common.thread < 0 {
		return nil
	}
	return e.c.Thread(e.ThreadID())
}

// StackID is the pool key of stackTrace, 0 if none.
func (e *Event) StackID() uint64 { return e.raw(e.Type.common.stack) }

// Stack resolves stackTrace; nil if the event has none.
func (e *Event) Stack() *Stack {
	if e.Type.common.stack < 0 {
		return nil
	}
	return e.c.Stack(e.StackID())
}

func (e *Event) field(name string) (*Field, uint64, bool) {
	i := e.Type.FieldIndex(name)
	if i < 0 || !e.decode() {
		return nil, 0, false
	}
	return &e.Type.Fields[i], e.vals[i], true
}

// Int returns an integral, boolean or char field as int64 (timestamps and
// durations stay in ticks). ok is false if the field is absent or not a
// plain number.
func (e *Event) Int(name string) (int64, bool) {
	f, v, ok := e.field(name)
	if !ok || f.Array || f.ConstantPool {
		return 0, false
	}
	switch f.Type.kind {
	case kBool, kByte, kChar, kShort, kInt, kLong:
		return signed(f.Type.kind, v), true
	}
	return 0, false
}

// Float returns a float or double field.
func (e *Event) Float(name string) (float64, bool) {
	f, v, ok := e.field(name)
	if !ok || f.Array || f.ConstantPool {
		return 0, false
	}
	switch f.Type.kind {
	case kFloat:
		return f32(v), true
	case kDouble:
		return f64(v), true
	}
	return 0, false
}

// String returns a string field, or the label of a pool reference to a
// string-like type (jdk.types.Symbol, jdk.types.ThreadState, GC names...).
func (e *Event) String(name string) (string, bool) {
	f, v, ok := e.field(name)
	if !ok || f.Array {
		return "", false
	}
	if f.Type.kind != kString && !f.ConstantPool {
		return "", false
	}
	return e.c.str(f, v), true
}

// Class resolves a java.lang.Class field (monitorClass, parkedClass,
// objectClass...); nil when absent or null.
func (e *Event) Class(name string) *Class {
	f, v, ok := e.field(name)
	if !ok || !isRefTo(*f, "java.lang.Class") {
		return nil
	}
	return e.c.Class(v)
}

// ThreadField resolves another java.lang.Thread field (previousOwner...).
func (e *Event) ThreadField(name string) *Thread {
	f, v, ok := e.field(name)
	if !ok || !isRefTo(*f, "java.lang.Thread") {
		return nil
	}
	return e.c.Thread(v)
}

// Ticks converts a timestamp field (in ticks) to epoch nanoseconds.
func (e *Event) Ticks(name string) (int64, bool) {
	v, ok := e.Int(name)
	if !ok {
		return 0, false
	}
	return e.c.EpochNanos(v), true
}

// Err reports whether decoding the fields read so far failed (the chunk's
// Err then says where). It decodes nothing itself.
func (e *Event) Err() error {
	if e.bad {
		return e.c.err
	}
	return nil
}
