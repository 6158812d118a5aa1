package jfr

// pool maps the keys of one constant pool to the chunk offsets of their
// values. Values are decoded only when an event refers to them, and the
// decoded forms are cached by slot (see Chunk).
type pool struct {
	typ  *Type
	keys []uint64
	offs []uint32
	// key -> slot+1; dense when keys are small (async-profiler numbers
	// its pools from 1), a map otherwise (JDK method and class ids encode
	// class ids in their high bits).
	dense  []int32
	sparse map[uint64]int32
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
	if max < uint64(4*n+1024) {
		p.dense = make([]int32, max+1)
		for i, k := range p.keys {
			p.dense[k] = int32(i + 1)
		}
		return
	}
	p.sparse = make(map[uint64]int32, n)
	for i, k := range p.keys {
		p.sparse[k] = int32(i + 1)
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
	return int(p.sparse[key]) - 1
}

func (p *pool) len() int {
	if p == nil {
		return 0
	}
	return len(p.keys)
}
