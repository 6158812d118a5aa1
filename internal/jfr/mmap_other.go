//go:build !unix

package jfr

import (
	"errors"
	"os"
)

func mapChunk(f *os.File, off, size int64) ([]byte, func(), error) {
	return nil, nil, errors.ErrUnsupported
}
