package jfr

import (
	"bytes"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the reader and everything it can
// resolve: the result must be events and an error or io.EOF, never a panic
// or a hang. Crashers found are kept in testdata/fuzz/FuzzReader and run
// by plain `go test`.
func FuzzReader(f *testing.F) {
	f.Add(synthChunk(true))
	f.Add(synthChunk(false))
	two := synthChunk(true)
	f.Add(append(append([]byte{}, two...), synthChunk(false)...))
	f.Add([]byte("FLR\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := readAll(NewReader(bytes.NewReader(data)))
		if err == nil && n < 0 {
			t.Fatal("negative count")
		}
	})
}
