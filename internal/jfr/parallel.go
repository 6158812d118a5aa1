package jfr

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Parallel calls fn for every chunk of the recording file at path, on up to
// workers goroutines at once (workers < 1 means 1). Each call gets its own
// *Chunk, valid until fn returns; memory holds at most workers chunks.
// Chunks are independent (their own metadata and pools), which is what
// makes this safe: fn must only not share a Chunk or Event across calls.
//
// Parallel returns the first error of fn, or the *Error of the first chunk
// that is truncated or corrupt, by chunk index. Chunks after a failed one
// may have been passed to fn too: callers that want the sequential
// semantics (complete chunks, then the error) drop results whose index is
// above the *Error's Chunk.
func Parallel(path string, workers int, fn func(*Chunk) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening recording: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening recording: %w", err)
	}
	type job struct {
		index int
		off   int64
		h     Header
	}
	// Headers are read up front: 68 bytes per chunk.
	var jobs []job
	var scanErr error
	r := &Reader{r: f, file: f, size: st.Size()}
	for off := int64(0); off < r.size; {
		index := len(jobs)
		if r.size-off < headerSize {
			scanErr = &Error{Chunk: index, Offset: r.size, Err: fmt.Errorf("%w: %d of %d header bytes present", ErrTruncated, r.size-off, headerSize)}
			break
		}
		hb := make([]byte, headerSize)
		if _, err := f.ReadAt(hb, off); err != nil {
			scanErr = &Error{Chunk: index, Offset: off, Err: fmt.Errorf("reading chunk header: %w", err)}
			break
		}
		h, err := parseHeader(hb)
		if err != nil {
			scanErr = &Error{Chunk: index, Offset: off, Err: err}
			break
		}
		if h.Size > r.size-off {
			scanErr = &Error{Chunk: index, Offset: r.size, Err: fmt.Errorf("%w: chunk declares %d bytes, only %d present (a recording still being written, or a cut file)", ErrTruncated, h.Size, r.size-off)}
			break
		}
		jobs = append(jobs, job{index, off, h})
		off += h.Size
	}
	if workers < 1 {
		workers = 1
	}
	errs := make([]error, len(jobs))
	next := make(chan job)
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				errs[j.index] = runChunk(f, j.index, j.off, j.h, fn)
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return scanErr
}

func runChunk(f *os.File, index int, off int64, h Header, fn func(*Chunk) error) error {
	buf, mp, err := mapChunk(f, off, h.Size)
	if err != nil {
		buf = make([]byte, h.Size)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return &Error{Chunk: index, Offset: off, Err: fmt.Errorf("reading chunk: %w", err)}
		}
	} else {
		defer mp.close()
	}
	c := &Chunk{}
	if err := c.reset(index, off, h, buf[:h.Size]); err != nil {
		return err
	}
	c.mapped = mp
	return fn(c)
}
