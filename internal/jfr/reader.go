package jfr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// headerSize is the size of a chunk header in format versions 1 and 2.
const headerSize = 68

// Header is a chunk header. Offsets are relative to the chunk's start.
type Header struct {
	Major, Minor       uint16
	Size               int64 // bytes in the chunk, header included
	ConstantPoolOffset int64 // last checkpoint event; earlier ones are chained from it
	MetadataOffset     int64
	StartNanos         int64 // wall clock (epoch ns) at StartTicks
	DurationNanos      int64
	StartTicks         int64
	TicksPerSecond     int64
	Features           uint32 // bit 0: compressed integers; bit 1: final chunk (JDK)
}

// CompressedInts reports whether integers are LEB128 varints.
func (h *Header) CompressedInts() bool { return h.Major == 1 || h.Features&1 != 0 }

// Producer is who wrote a chunk; it decides what its ticks mean.
type Producer uint8

const (
	// ProducerJDK is the JDK Flight Recorder: ticks count from JVM start.
	ProducerJDK Producer = iota
	// ProducerAsyncProfiler is async-profiler: with 1e9 ticks per second,
	// ticks are absolute CLOCK_MONOTONIC nanoseconds.
	ProducerAsyncProfiler
)

func (p Producer) String() string {
	if p == ProducerAsyncProfiler {
		return "async-profiler"
	}
	return "JDK"
}

// Reader reads a recording chunk by chunk. It holds one chunk in memory at a
// time and reuses that memory for the next chunk.
type Reader struct {
	r      io.Reader
	closer io.Closer
	size   int64 // total size when known (files), else -1
	off    int64 // offset of the next chunk
	index  int
	buf    []byte
	err    error
	chunk  *Chunk

	// Regular files are mapped chunk by chunk rather than read.
	file   *os.File
	mapped *mapping
}

// NewReader reads a recording from r, which need not be seekable (a gzip
// stream works). If r is an *os.File its size is used to reject chunk sizes
// larger than the file before allocating.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{r: r, size: -1}
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos == 0 {
				rd.size = st.Size()
				rd.file = f
			}
		}
	}
	return rd
}

// Open opens the recording at path. Close it when done.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening recording: %w", err)
	}
	r := NewReader(f)
	r.closer = f
	return r, nil
}

// Close closes the file opened by Open; it does nothing for NewReader.
func (r *Reader) Close() error {
	r.release()
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// NextChunk reads and indexes the next chunk: its header, metadata and
// constant pools. It returns io.EOF after the last chunk, and an *Error for a
// truncated or corrupt chunk, after which it keeps returning that error. The
// returned chunk and its events are valid until the next call; the values it
// resolves (stacks, threads, methods, classes, strings) stay valid for good.
func (r *Reader) NextChunk() (*Chunk, error) {
	if r.err != nil {
		return nil, r.err
	}
	c, err := r.next()
	if err != nil {
		if err != io.EOF {
			var e *Error
			if !errors.As(err, &e) {
				err = &Error{Chunk: r.index, Offset: r.off, Err: err}
			}
		}
		r.err = err
		return nil, err
	}
	return c, nil
}

// release drops the current chunk's mapping, if any.
func (r *Reader) release() {
	if r.mapped != nil {
		r.mapped.close()
		r.mapped = nil
	}
}

func (r *Reader) next() (*Chunk, error) {
	r.release()
	if r.file != nil {
		return r.nextMapped()
	}
	start := r.off
	if cap(r.buf) < headerSize {
		r.buf = make([]byte, headerSize, 64<<10)
	}
	hb := r.buf[:headerSize]
	n, err := io.ReadFull(r.r, hb)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, &Error{Chunk: r.index, Offset: start + int64(n), Err: fmt.Errorf("%w: %d of %d header bytes present", ErrTruncated, n, headerSize)}
		}
		return nil, fmt.Errorf("reading chunk header: %w", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	if r.size >= 0 && h.Size > r.size-start {
		return nil, &Error{Chunk: r.index, Offset: r.size, Err: fmt.Errorf("%w: chunk declares %d bytes, only %d present (a recording still being written, or a cut file)", ErrTruncated, h.Size, r.size-start)}
	}
	// Grow the buffer as bytes arrive rather than trusting h.Size, so that
	// a lying size in a stream costs no more memory than the stream has.
	buf := r.buf[:headerSize]
	if r.size >= 0 && int64(cap(buf)) < h.Size {
		// The size was checked against the file: allocate once.
		buf = make([]byte, headerSize, h.Size)
		copy(buf, hb)
	}
	for int64(len(buf)) < h.Size {
		if len(buf) == cap(buf) {
			want := min(h.Size, int64(2*cap(buf)))
			nb := make([]byte, len(buf), want)
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r.r, buf[len(buf):min(h.Size, int64(cap(buf)))])
		buf = buf[:len(buf)+m]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			r.buf = buf[:0]
			return nil, &Error{Chunk: r.index, Offset: start + int64(len(buf)), Err: fmt.Errorf("%w: chunk declares %d bytes, only %d present (a recording still being written, or a cut file)", ErrTruncated, h.Size, len(buf))}
		}
		if err != nil {
			return nil, fmt.Errorf("reading chunk: %w", err)
		}
	}
	r.buf = buf
	return r.index_(start, h, buf)
}

// nextMapped reads the next chunk of a regular file by mapping it.
func (r *Reader) nextMapped() (*Chunk, error) {
	start := r.off
	if start >= r.size {
		return nil, io.EOF
	}
	if r.size-start < headerSize {
		return nil, &Error{Chunk: r.index, Offset: r.size, Err: fmt.Errorf("%w: %d of %d header bytes present", ErrTruncated, r.size-start, headerSize)}
	}
	hb := make([]byte, headerSize)
	if _, err := r.file.ReadAt(hb, start); err != nil {
		return nil, fmt.Errorf("reading chunk header: %w", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	if h.Size > r.size-start {
		return nil, &Error{Chunk: r.index, Offset: r.size, Err: fmt.Errorf("%w: chunk declares %d bytes, only %d present (a recording still being written, or a cut file)", ErrTruncated, h.Size, r.size-start)}
	}
	buf, mp, err := mapChunk(r.file, start, h.Size)
	if err != nil {
		// Fall back to reading (e.g. a file system that cannot map).
		if cap(r.buf) < int(h.Size) {
			r.buf = make([]byte, h.Size)
		}
		buf = r.buf[:h.Size]
		if _, err := r.file.ReadAt(buf, start); err != nil {
			return nil, fmt.Errorf("reading chunk: %w", err)
		}
	}
	r.mapped = mp
	c, err := r.index_(start, h, buf)
	if err == nil && mp != nil {
		c.mapped = mp
	}
	return c, err
}

// index_ indexes a chunk held in buf and moves past it.
func (r *Reader) index_(start int64, h Header, buf []byte) (*Chunk, error) {
	c := r.chunk
	if c == nil {
		c = &Chunk{}
		r.chunk = c
	}
	if err := c.reset(r.index, start, h, buf[:h.Size]); err != nil {
		return nil, err
	}
	r.off += h.Size
	r.index++
	return c, nil
}

// ParseHeader decodes and checks a chunk header (the first 68 bytes of a
// chunk), e.g. to learn a recording's start without reading its chunks.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < headerSize {
		return Header{}, fmt.Errorf("%w: %d of %d header bytes present", ErrTruncated, len(b), headerSize)
	}
	return parseHeader(b)
}

func parseHeader(b []byte) (Header, error) {
	if !bytes.Equal(b[:4], []byte("FLR\x00")) {
		return Header{}, ErrNotJFR
	}
	be := binary.BigEndian
	h := Header{
		Major:              be.Uint16(b[4:]),
		Minor:              be.Uint16(b[6:]),
		Size:               int64(be.Uint64(b[8:])),
		ConstantPoolOffset: int64(be.Uint64(b[16:])),
		MetadataOffset:     int64(be.Uint64(b[24:])),
		StartNanos:         int64(be.Uint64(b[32:])),
		DurationNanos:      int64(be.Uint64(b[40:])),
		StartTicks:         int64(be.Uint64(b[48:])),
		TicksPerSecond:     int64(be.Uint64(b[56:])),
		Features:           be.Uint32(b[64:]),
	}
	if h.Major != 1 && h.Major != 2 {
		return h, fmt.Errorf("%w %d.%d (this reader knows 1.x and 2.x)", ErrVersion, h.Major, h.Minor)
	}
	if h.Size < headerSize || h.Size > 1<<32-1 {
		return h, corruptf("chunk size %d", h.Size)
	}
	if h.MetadataOffset < headerSize || h.MetadataOffset >= h.Size {
		return h, corruptf("metadata offset %d outside the chunk of %d bytes", h.MetadataOffset, h.Size)
	}
	if h.ConstantPoolOffset < headerSize || h.ConstantPoolOffset >= h.Size {
		return h, corruptf("constant pool offset %d outside the chunk of %d bytes", h.ConstantPoolOffset, h.Size)
	}
	if h.TicksPerSecond <= 0 {
		return h, corruptf("ticks per second %d", h.TicksPerSecond)
	}
	return h, nil
}

// producerOf tells async-profiler chunks (which declare profiler.* types)
// from JDK chunks.
func producerOf(m *Metadata) Producer {
	for _, t := range m.Types {
		if strings.HasPrefix(t.Name, "profiler.") {
			return ProducerAsyncProfiler
		}
	}
	return ProducerJDK
}
