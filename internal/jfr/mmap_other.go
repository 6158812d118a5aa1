//go:build !unix

package jfr

import (
	"errors"
	"os"
)

// mapping is a mapped chunk; chunks are read, not mapped, here.
type mapping struct{}

func mapChunk(f *os.File, off, size int64) ([]byte, *mapping, error) {
	return nil, nil, errors.ErrUnsupported
}

func (*mapping) readTo(int) {}
func (*mapping) close()     {}
