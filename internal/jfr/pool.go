package jfr

// pool maps the keys of one constant pool to the chunk offsets of their
// values. Values are decoded only when an event refers to them, and the
// decoded forms are cached by slot (see Chunk).
type pool struct {
	typ  *Type
	keys []uint64
	offs []uint32
	// key -> slot+1. Dense when keys are small enough (async-profiler's
	// pools number from 1, its stack ids are 16-bit hashes, thread keys
	// are OS tids); otherwise an open-addressing table, because JDK
	// method and class keys carry class ids in their high bits.
	dense []int32
	hkeys []uint64
	hvals []int32
	shift uint

	strs []*string // decoded string labels, by slot
}

func (p *pool) add(key uint64, off int) {
	p.keys = append(p.keys, key)
	p.offs = append(p.offs, uint32(off))
}

// index builds the key lookup after every checkpoint of the chunk was read.
// A key defined twice keeps its last definition.
func (p *pool) index() {
	var max uint64
	for _, k := range p.keys {
		if k > max {
			max = k
		}
	}
	n := len(p.keys)
	if max < 1<<18 || max < uint64(16*n) {
		p.dense = make([]int32, max+1)
		for i, k := range p.keys {
			p.dense[k] = int32(i + 1)
		}
		return
	}
	size := 1
	p.shift = 64
	for size < 2*n {
		size <<= 1
		p.shift--
	}
	p.hkeys = make([]uint64, size)
	p.hvals = make([]int32, size)
	mask := uint64(size - 1)
	for i, k := range p.keys {
		h := (k * 0x9E3779B97F4A7C15) >> p.shift
		for p.hvals[h] != 0 && p.hkeys[h] != k {
			h = (h + 1) & mask
		}
		p.hkeys[h] = k
		p.hvals[h] = int32(i + 1)
	}
}

// slot returns the slot of key, or -1 when the pool has no such key.
func (p *pool) slot(key uint64) int {
	if p == nil {
		return -1
	}
	if p.dense != nil {
		if key < uint64(len(p.dense)) {
			return int(p.dense[key]) - 1
		}
		return -1
	}
	if len(p.hvals) == 0 {
		return -1
	}
	mask := uint64(len(p.hvals) - 1)
	h := (key * 0x9E3779B97F4A7C15) >> p.shift
	for {
		v := p.hvals[h]
		if v == 0 {
			return -1
		}
		if p.hkeys[h] == key {
			return int(v) - 1
		}
		h = (h + 1) & mask
	}
}

func (p *pool) len() int {
	if p == nil {
		return 0
	}
	return len(p.keys)
}
