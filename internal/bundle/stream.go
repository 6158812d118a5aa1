package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// readStream reads a bundle's JSON-lines stream (offcpu.jsonl, fs.jsonl):
// the first line is the header, which head returns the format and version
// of; fn gets every later line, decoded, with its number. Blank lines are
// skipped, a last line without a newline is read, and errors name the
// stream (what) and the line.
func readStream[L any](r io.Reader, what, format string, version, bufSize int,
	head func(*L) (string, int), fn func(lineNo int, l *L) error) error {
	br := bufio.NewReaderSize(r, bufSize)
	headed := false
	for lineNo := 1; ; lineNo++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			if !headed {
				return fmt.Errorf("%s stream is empty (no header line)", what)
			}
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading %s stream: %w", what, err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			var l L
			if err := json.Unmarshal(b, &l); err != nil {
				return fmt.Errorf("%s stream line %d: %w", what, lineNo, err)
			}
			if !headed {
				headed = true
				f, v := head(&l)
				if f != format {
					return fmt.Errorf("%s stream: format %q, want %q", what, f, format)
				}
				if v > version {
					return fmt.Errorf("%s stream version %d is newer than this lockscope reads (%d): %w", what, v, version, ErrNewerVersion)
				}
			} else if err := fn(lineNo, &l); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}
