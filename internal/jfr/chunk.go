package jfr

import (
	"encoding/binary"
	"fmt"
)

// Chunk is one self-contained part of a recording: its own metadata, its
// own constant pools (pool keys mean nothing outside the chunk) and its
// events. Iterate with Next and Event.
type Chunk struct {
	Index    int   // 0-based position in the recording
	Offset   int64 // byte offset of the chunk in the recording
	Header   Header
	Metadata *Metadata
	Producer Producer

	// Records that are not events, counted for summaries.
	MetadataRecords, CheckpointRecords int
	MetadataBytes, CheckpointBytes     int64
	// UnknownEvents counts records whose type id the metadata does not
	// declare; they are skipped by their size.
	UnknownEvents int

	buf   []byte
	d     decoder
	types []*Type // event types by id (dense; ids are small in practice)
	pools map[uint64]*pool
	err   error
	ev    Event
	// budget counts down the pool values one generic decode may resolve.
	budget int

	// Well-known pools and their decoded values, by pool slot.
	stackPool, threadPool, methodPool, classPool *pool
	stacks                                       []*Stack
	threads                                      []*Thread
	methods                                      []*Method
	classes                                      []*Class
	// The same stacks and threads by pool key, for pools whose keys are
	// dense (see pool.index): async-profiler's 16-bit stack ids and OS
	// thread ids.
	stackByKey  []*Stack
	threadByKey []*Thread

	// mapped is the chunk's mapping (nil when it was read); Next reports
	// its progress when it passes nextRelease.
	mapped      *mapping
	nextRelease int
	scratch     []uint64
}

func (c *Chunk) reset(index int, off int64, h Header, buf []byte) error {
	*c = Chunk{Index: index, Offset: off, Header: h, buf: buf, ev: Event{vals: c.ev.vals[:0]}, scratch: c.scratch}
	c.d = decoder{b: buf, pos: headerSize, compressed: h.CompressedInts()}
	wrap := func(err error, at int) error {
		return &Error{Chunk: index, Offset: off + int64(at), Err: err}
	}
	md := decoder{b: buf, pos: int(h.MetadataOffset), compressed: c.d.compressed}
	m, err := parseMetadata(&md)
	if err != nil {
		return wrap(fmt.Errorf("reading metadata: %w", err), int(h.MetadataOffset))
	}
	c.Metadata = m
	c.Producer = producerOf(m)
	var maxID uint64
	for _, t := range m.Types {
		if t.IsEvent() && t.ID > maxID {
			maxID = t.ID
		}
	}
	if maxID > 1<<20 {
		maxID = 1 << 20 // larger ids go through Metadata.byID
	}
	c.types = make([]*Type, maxID+1)
	for _, t := range m.Types {
		t.ops = compileOps(t, c.d.compressed)
		if t.IsEvent() && t.ID <= maxID {
			c.types[t.ID] = t
		}
	}
	c.pools = map[uint64]*pool{}
	if at, err := c.readCheckpoints(); err != nil {
		return wrap(fmt.Errorf("reading constant pools: %w", err), at)
	}
	for _, p := range c.pools {
		p.index()
	}
	c.stackPool = c.poolOf("jdk.types.StackTrace")
	c.threadPool = c.poolOf("java.lang.Thread")
	c.methodPool = c.poolOf("jdk.types.Method")
	c.classPool = c.poolOf("java.lang.Class")
	c.stacks = make([]*Stack, c.stackPool.len())
	c.threads = make([]*Thread, c.threadPool.len())
	c.methods = make([]*Method, c.methodPool.len())
	c.classes = make([]*Class, c.classPool.len())
	if p := c.stackPool; p != nil && p.dense != nil {
		c.stackByKey = make([]*Stack, len(p.dense))
	}
	if p := c.threadPool; p != nil && p.dense != nil {
		c.threadByKey = make([]*Thread, len(p.dense))
	}
	return nil
}

func (c *Chunk) poolOf(name string) *pool {
	if t := c.Metadata.Type(name); t != nil {
		return c.pools[t.ID]
	}
	return nil
}

// readCheckpoints walks the chain of checkpoint events backwards from the
// header's constant-pool offset. Each step must move backwards, so a corrupt
// delta cannot loop.
func (c *Chunk) readCheckpoints() (int, error) {
	at := int(c.Header.ConstantPoolOffset)
	for {
		d := decoder{b: c.buf, pos: at, compressed: c.d.compressed}
		size := int(d.i32())
		end := at + size
		if d.err != nil || size <= 0 || end > len(c.buf) || end < at {
			return at, corruptf("checkpoint size %d", size)
		}
		d.b = c.buf[:end]
		if typ := d.i64(); typ != 1 {
			return at, corruptf("checkpoint chain points to a record of type %d", typ)
		}
		d.i64() // start
		d.i64() // duration
		delta := d.i64()
		d.u8() // flush / checkpoint type
		n := d.count(2)
		for i := 0; i < n && d.err == nil; i++ {
			cls := uint64(d.i64())
			cnt := d.count(1)
			t := c.Metadata.byID[cls]
			if t == nil {
				if d.err == nil {
					return d.pos, corruptf("constant pool of undeclared class %d", cls)
				}
				break
			}
			p := c.pools[cls]
			if p == nil {
				p = &pool{typ: t}
				c.pools[cls] = p
			}
			for j := 0; j < cnt && d.err == nil; j++ {
				key := uint64(d.i64())
				off := d.pos
				d.skipOne(t, false)
				p.add(key, off)
			}
		}
		if d.err != nil {
			return d.pos, d.err
		}
		if delta == 0 {
			return 0, nil
		}
		next := at + int(delta)
		if delta > 0 || next < headerSize {
			return at, corruptf("checkpoint delta %d does not lead to an earlier checkpoint", delta)
		}
		at = next
	}
}

// Next advances to the next event and reports whether there is one. It
// skips metadata and checkpoint records and events of undeclared types.
// After it returns false, Err says whether the chunk ended cleanly.
func (c *Chunk) Next() bool {
	b, p := c.d.b, c.d.pos
	for p < len(b) && c.err == nil {
		start := p
		var size, id uint64
		if c.d.compressed {
			size, p = uvarint(b, p)
			if p >= 0 {
				id, p = uvarint(b, p)
			}
		} else if p+12 <= len(b) {
			size = uint64(binary.BigEndian.Uint32(b[p:]))
			id = binary.BigEndian.Uint64(b[p+4:])
			p += 12
		} else {
			p = -1
		}
		end := start + int(size)
		if p < 0 || size == 0 || size > uint64(len(b)-start) || p > end {
			c.fail(start, corruptf("event size %d", size))
			return false
		}
		payload := p
		p = end
		if id <= 1 {
			if id == 0 {
				c.MetadataRecords++
				c.MetadataBytes += int64(size)
			} else {
				c.CheckpointRecords++
				c.CheckpointBytes += int64(size)
			}
			continue
		}
		var t *Type
		if id < uint64(len(c.types)) {
			t = c.types[id]
		} else if tt := c.Metadata.byID[id]; tt != nil && tt.IsEvent() {
			t = tt
		}
		if t == nil {
			c.UnknownEvents++
			continue
		}
		c.d.pos = p
		if start >= c.nextRelease {
			c.progress(start)
		}
		ev := &c.ev
		// A caller that read fields of an event of this type will read
		// the common ones of this one: decode them now, in this call,
		// rather than through three more on first access. A caller that
		// only counts events (a summary), or skips this type (a lock
		// profile skipping wall samples), pays nothing.
		ev.Type, ev.c, ev.off, ev.payload, ev.end, ev.ndec, ev.bad = t, c, start, payload, end, 0, false
		if n := t.common.prefix; t.read && n > 0 && n <= t.varints && payload+9*n <= len(b) && cap(ev.vals) >= len(t.Fields) {
			ev.vals = ev.vals[:len(t.Fields)]
			if q := varintsAt(b, payload, ev.vals[:n]); q <= end {
				ev.pos, ev.ndec = q, n
			}
		}
		return true
	}
	c.d.pos = p
	return false
}

// progress tells the mapping, if any, that events before at were read.
func (c *Chunk) progress(at int) {
	if c.mapped == nil {
		c.nextRelease = len(c.buf) + 1
		return
	}
	c.mapped.readTo(at)
	c.nextRelease = at + 1<<20
}

func (c *Chunk) fail(at int, err error) {
	if c.err == nil {
		c.err = &Error{Chunk: c.Index, Offset: c.Offset + int64(at), Err: err}
	}
	c.d.pos = len(c.d.b)
}

// Event returns the current event. It is overwritten by the next call to
// Next; copy what you need to keep.
func (c *Chunk) Event() *Event { return &c.ev }

// Err returns the error that stopped Next, or nil at a clean end. It is an
// *Error naming the chunk and byte offset.
func (c *Chunk) Err() error { return c.err }

// Bytes is the size of the chunk in bytes.
func (c *Chunk) Bytes() int64 { return c.Header.Size }

// Rewind restarts iteration at the chunk's first event, e.g. to read its
// settings (jdk.ActiveSetting) before its samples. Record counters restart
// too.
func (c *Chunk) Rewind() {
	c.d.pos = headerSize
	c.err = nil
	c.MetadataRecords, c.CheckpointRecords, c.UnknownEvents = 0, 0, 0
	c.MetadataBytes, c.CheckpointBytes = 0, 0
}
