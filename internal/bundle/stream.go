package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	fastjson "github.com/goccy/go-json"
	"io"
	"os"
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
			if err := fastjson.Unmarshal(b, &l); err != nil {
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

// TrimStream cuts a JSON-lines stream of a bundle (offcpu.jsonl, fs.jsonl,
// requests.jsonl) after its last complete line and returns how many bytes
// it dropped. A capture killed mid-write leaves a stream whose buffered
// tail is lost and whose last line is cut where the last write ended: that
// partial line cannot be decoded, and every line before it can.
func TrimStream(path string) (dropped int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("trimming stream: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("trimming stream: %w", err)
	}
	size := st.Size()
	// Search backwards, a block at a time, for the last newline.
	buf := make([]byte, 64<<10)
	keep := int64(0)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, fmt.Errorf("trimming stream %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			keep = start + int64(i) + 1
			break
		}
		end = start
	}
	if keep == size {
		return 0, nil
	}
	if err := f.Truncate(keep); err != nil {
		return 0, fmt.Errorf("trimming stream %s: %w", path, err)
	}
	return size - keep, nil
}
