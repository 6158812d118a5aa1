package demobroker

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Record is one record read back from a partition's segment files.
type Record struct {
	Offset int64
	Key    []byte // nil for a null key
	Value  []byte // nil for a null value
}

// ReadPartition reads every record in a topic-partition directory's segment
// files (*.log, in offset order): record batches v2 and legacy v0/v1
// messages, uncompressed. It is how tests check that produced bytes reached
// the right partition's files.
func ReadPartition(dir string) ([]Record, error) {
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(segs) // zero-padded base offsets sort as numbers
	var out []Record
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("reading segment: %w", err)
		}
		recs, err := parseSegment(b)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", s, err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

func parseSegment(b []byte) ([]Record, error) {
	var out []Record
	for pos := 0; pos < len(b); {
		if len(b)-pos < 17 {
			return nil, fmt.Errorf("truncated entry at %d", pos)
		}
		base := int64(binary.BigEndian.Uint64(b[pos:]))
		n := int(int32(binary.BigEndian.Uint32(b[pos+8:]))) + 12
		if n < 17 || n > len(b)-pos {
			return nil, fmt.Errorf("entry length %d at %d", n, pos)
		}
		entry := b[pos : pos+n]
		var err error
		switch magic := entry[16]; magic {
		case 2:
			out, err = parseBatch(entry, base, out)
		case 0, 1:
			out, err = parseLegacy(entry, base, magic, out)
		default:
			err = fmt.Errorf("unknown magic %d", magic)
		}
		if err != nil {
			return nil, fmt.Errorf("at %d: %w", pos, err)
		}
		pos += n
	}
	return out, nil
}

// parseBatch reads a v2 record batch (KIP-98 layout): a 61-byte header, then
// records of zigzag varint fields.
func parseBatch(e []byte, base int64, out []Record) ([]Record, error) {
	if len(e) < 61 {
		return nil, fmt.Errorf("batch header truncated")
	}
	if codec := binary.BigEndian.Uint16(e[21:]) & 7; codec != 0 {
		return nil, fmt.Errorf("compressed batch (codec %d) not supported", codec)
	}
	count := int(int32(binary.BigEndian.Uint32(e[57:])))
	r := reader{b: e[61:]}
	for i := 0; i < count; i++ {
		length := r.varint()
		start := r.pos
		r.pos++ // attributes
		r.varint()
		delta := r.varint()
		key := r.bytes()
		value := r.bytes()
		for h := r.varint(); h > 0 && r.err == nil; h-- {
			r.bytes()
			r.bytes()
		}
		if r.err != nil || r.pos-start != int(length) {
			return nil, fmt.Errorf("record %d malformed", i)
		}
		out = append(out, Record{Offset: base + delta, Key: key, Value: value})
	}
	return out, nil
}

func parseLegacy(e []byte, base int64, magic byte, out []Record) ([]Record, error) {
	r := reader{b: e, pos: 18} // offset, size, crc, magic, attributes
	if e[17]&7 != 0 {
		return nil, fmt.Errorf("compressed message not supported")
	}
	if magic == 1 {
		r.pos += 8
	}
	key, value := r.int32Bytes(), r.int32Bytes()
	if r.err != nil {
		return nil, fmt.Errorf("legacy message malformed")
	}
	return append(out, Record{Offset: base, Key: key, Value: value}), nil
}

type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) varint() int64 {
	if r.err != nil || r.pos >= len(r.b) {
		r.err = fmt.Errorf("truncated")
		return 0
	}
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		r.err = fmt.Errorf("bad varint")
		return 0
	}
	r.pos += n
	return v
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.pos {
		r.err = fmt.Errorf("truncated")
		return nil
	}
	s := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return s
}

func (r *reader) bytes() []byte {
	n := r.varint()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}

func (r *reader) int32Bytes() []byte {
	l := r.take(4)
	if l == nil {
		return nil
	}
	n := int32(binary.BigEndian.Uint32(l))
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}
