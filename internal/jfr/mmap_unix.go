//go:build unix

package jfr

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Residency of a mapped chunk, in bytes: how far ahead of the decoder its
// pages are touched, and how much it reads past before dropping pages.
const (
	touchAhead   = 32 << 20
	releaseEvery = 4 << 20
)

// mapping is a chunk mapped read-only. Mapping instead of reading saves
// copying and zeroing a buffer of the chunk's size (the largest cost of
// reading a big chunk), and the page cache, not the Go heap, holds it.
//
// The first load from each page of a fresh mapping is slow on virtual
// machines, with or without MAP_POPULATE: measured on the 2-vCPU test VM,
// 36-56 ms per 100 MB for one load per 4 KiB page, against 4 ms for a
// second pass, whichever thread makes it. So a goroutine touches the pages
// up to touchAhead bytes ahead of the decoder, off its critical path (on
// another CPU when there is one), and the pages the decoder has passed are
// dropped (MADV_DONTNEED: the page cache keeps them, a later pool lookup
// faults them back in), which keeps the resident set of a conversion far
// below the size of its chunks.
type mapping struct {
	m        []byte // the whole mapping, from a page boundary
	shift    int    // buf[i] is m[shift+i]
	page     int
	decoded  atomic.Int64 // position in m the decoder has reached
	released int          // m[:released] has been dropped
	stop     atomic.Bool
	wg       sync.WaitGroup
}

// mapChunk maps [off, off+size) of f read-only. The returned mapping must
// be closed before the next chunk is mapped.
func mapChunk(f *os.File, off, size int64) ([]byte, *mapping, error) {
	page := int64(os.Getpagesize())
	base := off &^ (page - 1)
	m, err := syscall.Mmap(int(f.Fd()), base, int(size+off-base), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	mp := &mapping{m: m, shift: int(off - base), page: int(page)}
	mp.wg.Add(1)
	go func() {
		defer mp.wg.Done()
		mp.touch()
	}()
	return m[mp.shift:], mp, nil
}

// readTo tells the mapping that the decoder reached pos (a chunk offset).
func (mp *mapping) readTo(pos int) {
	at := mp.shift + pos
	mp.decoded.Store(int64(at))
	if end := at &^ (mp.page - 1); end-mp.released >= releaseEvery {
		// An error only means the pages stay resident.
		_ = syscall.Madvise(mp.m[mp.released:end], syscall.MADV_DONTNEED)
		mp.released = end
	}
}

func (mp *mapping) close() {
	mp.stop.Store(true)
	mp.wg.Wait()
	syscall.Munmap(mp.m)
}

// madvPopulateRead is MADV_POPULATE_READ (Linux 5.14), which the syscall
// package does not name.
const madvPopulateRead = 22

// touchSink keeps the loads of touch from being optimized away.
var touchSink atomic.Uint32

// touch loads one byte of every page, staying within touchAhead of the
// decoder and checking stop every 64 pages so that close never waits long.
func (mp *mapping) touch() {
	var s byte
	step := 64 * mp.page
	populate := true
	for i := 0; i < len(mp.m); i += step {
		for i > int(mp.decoded.Load())+touchAhead {
			if mp.stop.Load() {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
		if mp.stop.Load() {
			break
		}
		end := min(i+step, len(mp.m))
		if populate {
			// Mapping the pages in one call costs a tenth of faulting
			// them in one by one (measured: 3 against 20 ms per 100 MB).
			if syscall.Madvise(mp.m[i:end], madvPopulateRead) != nil {
				populate = false // before Linux 5.14
			}
		}
		for j := i; j < end; j += mp.page {
			s += mp.m[j]
		}
	}
	touchSink.Add(uint32(s))
}
