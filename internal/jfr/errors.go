package jfr

import (
	"errors"
	"fmt"
)

// Errors a recording can produce. They are wrapped in an *Error that says
// which chunk and byte offset they were found at; test them with errors.Is.
var (
	// ErrTruncated means the recording ends inside a chunk: the file is
	// still being written, or was cut. Every complete chunk before it was
	// delivered.
	ErrTruncated = errors.New("recording truncated")
	// ErrCorrupt means a size, offset or count in the recording contradicts
	// the bytes around it.
	ErrCorrupt = errors.New("recording corrupt")
	// ErrNotJFR means the data does not start with the JFR magic "FLR\0".
	ErrNotJFR = errors.New("not a JFR recording (magic is not FLR\\0)")
	// ErrVersion means the chunk's format version is not 1.x or 2.x.
	ErrVersion = errors.New("unsupported JFR format version")
)

// Error reports where in a recording reading stopped. Chunk is the 0-based
// index of the chunk, Offset the absolute byte offset in the recording.
type Error struct {
	Chunk  int
	Offset int64
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("jfr: chunk %d at byte %d: %v", e.Chunk, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// corruptf builds an ErrCorrupt with details; offsets are filled in by the
// caller that knows the chunk.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// errShort is the sticky error of a decoder that ran past its buffer. It is
// pre-allocated because it may be hit on hot paths while skipping events.
var errShort = fmt.Errorf("%w: read past the end of the chunk", ErrCorrupt)
