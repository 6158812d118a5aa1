//go:build unix

package jfr

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// mapChunk maps [off, off+size) of f read-only. Mapping instead of reading
// saves copying and zeroing a buffer of the chunk's size (the largest cost
// of reading a big chunk), and the page cache, not the Go heap, holds it.
// The returned unmap must be called before the next chunk is mapped.
//
// Even with MAP_POPULATE (no page faults), the first load from each page of
// a fresh mapping is slow on virtual machines: measured on the 2-vCPU test
// VM, 36-50 ms per 100 MB for one load per 4 KiB page, against 4 ms for a
// second pass, and the cost is paid once per page whichever thread pays it.
// So a goroutine touches the pages ahead of the decoder, off its critical
// path, on another CPU when there is one; unmap stops it first.
func mapChunk(f *os.File, off, size int64) ([]byte, func(), error) {
	page := int64(os.Getpagesize())
	base := off &^ (page - 1)
	m, err := syscall.Mmap(int(f.Fd()), base, int(size+off-base), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, nil, err
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		touchPages(m, int(page), &stop)
	}()
	return m[off-base:], func() {
		stop.Store(true)
		wg.Wait()
		syscall.Munmap(m)
	}, nil
}

// touchSink keeps the loads of touchPages from being optimized away.
var touchSink atomic.Uint32

// touchPages loads one byte of every page of m, checking stop every 64
// pages (a few microseconds) so that unmapping never waits long.
func touchPages(m []byte, page int, stop *atomic.Bool) {
	var s byte
	for i := 0; i < len(m); i += 64 * page {
		if stop.Load() {
			break
		}
		end := min(i+64*page, len(m))
		for j := i; j < end; j += page {
			s += m[j]
		}
	}
	touchSink.Add(uint32(s))
}
