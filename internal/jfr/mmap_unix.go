//go:build unix

package jfr

import (
	"os"
	"syscall"
)

// mapChunk maps [off, off+size) of f read-only. Mapping instead of reading
// saves copying and zeroing a buffer of the chunk's size (the largest cost
// of reading a big chunk), and the page cache, not the Go heap, holds it.
// The returned unmap must be called before the next chunk is mapped.
func mapChunk(f *os.File, off, size int64) ([]byte, func(), error) {
	page := int64(os.Getpagesize())
	base := off &^ (page - 1)
	m, err := syscall.Mmap(int(f.Fd()), base, int(size+off-base), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, nil, err
	}
	return m[off-base:], func() { syscall.Munmap(m) }, nil
}
