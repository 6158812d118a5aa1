package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff"
)

// A latency file (pcap:, requestlog:, csv:, jsonl:) is read when the
// capture ends, since it may be written during it. What can be known at the
// start is checked at the start: that the file is there and readable, and
// that its first line (or header) is of its kind, read by the latency
// package's own readers, so that a wrong file fails before anything
// attaches rather than after the whole capture.

// checkPrefix bounds what checkLatencySource reads: a JSON request log line
// can be long, a pcap header and a few packets are enough.
const checkPrefix = 1 << 20

// errChecked stops a reader after the first row.
var errChecked = errors.New("first row read")

// checkLatencySource checks a latency source given as --latency. A file
// source must exist and be readable, and latency must be able to read its
// beginning. An existing empty file is allowed with a warning (returned for
// the bundle's warnings): it is the usual state of a log that the workload
// starts writing once the capture runs, and refusing it would make that
// capture impossible to start; the file is still checked when it is read at
// the end (a file still empty then means no slow windows, said again).
func checkLatencySource(spec string) (warning string, err error) {
	kind, path, err := parseLatency(spec)
	if err != nil {
		return "", err
	}
	if kind == "none" || kind == "kafka" {
		return "", nil
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("--latency %s: the file does not exist: it must exist when the capture starts (start what writes it first, or create it empty)", spec)
	case errors.Is(err, fs.ErrPermission):
		return "", fmt.Errorf("--latency %s: %w (make it readable by lockscope's user)", spec, err)
	case err != nil:
		return "", fmt.Errorf("--latency %s: %w", spec, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--latency %s: %w", spec, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("--latency %s: not a regular file (%s)", spec, st.Mode().Type())
	}
	if st.Size() == 0 {
		return fmt.Sprintf("latency source %s is empty at the start: it is read when the capture ends, so whatever writes it must write it meanwhile", spec), nil
	}
	prefix, err := io.ReadAll(io.LimitReader(f, checkPrefix))
	if err != nil {
		return "", fmt.Errorf("--latency %s: %w", spec, err)
	}
	if err := checkLatencyPrefix(kind, prefix); err != nil {
		return "", fmt.Errorf("--latency %s: %w", spec, err)
	}
	return "", nil
}

// checkLatencyPrefix checks the beginning of a latency file of kind.
func checkLatencyPrefix(kind string, prefix []byte) error {
	switch kind {
	case "csv", "jsonl":
		line := prefix
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		if kind == "jsonl" && !bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
			return fmt.Errorf("the first line is not a JSON object: want one object per line with a start and a duration field, e.g. {\"start\": 1700000000.123, \"duration_ms\": 4.2}")
		}
		err := latency.ReadGeneric(bytes.NewReader(line), func(*latency.Request) error { return errChecked })
		if err != nil && !errors.Is(err, errChecked) {
			if kind == "csv" {
				return fmt.Errorf("has no header latency can read: %w: add a first line naming the columns, e.g. `start,duration_ms`", err)
			}
			return err
		}
	case "pcap":
		s, err := sniff.New(sniff.Options{Ports: []uint16{9092}}, func(*latency.Request) {})
		if err != nil {
			return err
		}
		// A cut packet ends the read without an error, as for a
		// capture still being written.
		if _, err := sniff.Read(bytes.NewReader(prefix), s); err != nil {
			return err
		}
	case "requestlog":
		// Only whole lines: the last may be cut by the prefix, or still
		// being written.
		i := bytes.LastIndexByte(prefix, '\n')
		if i < 0 {
			return nil // one line being written: nothing to judge yet
		}
		st, err := latency.ReadRequestLog(bytes.NewReader(prefix[:i+1]), time.Local, func(*latency.Request) error { return errChecked })
		if err != nil && !errors.Is(err, errChecked) {
			return err
		}
		if st.Requests == 0 {
			if st.Malformed > 0 {
				return fmt.Errorf("line %d is a completed request latency cannot read: %w", st.FirstMalformed, st.FirstMalformedErr)
			}
			return fmt.Errorf("none of its first %d lines is a completed request: give the log of kafka.request.logger at DEBUG (kafka-request.log)", st.Lines)
		}
	}
	return nil
}

// readLatencyFile reads a latency file of kind, calling emit per request.
// ports are the broker's ports in a pcap file.
func readLatencyFile(kind, path string, ports []int, emit func(*latency.Request)) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	switch kind {
	case "pcap":
		var ps []uint16
		for _, p := range ports {
			ps = append(ps, uint16(p))
		}
		if len(ps) == 0 {
			ps = []uint16{9092}
		}
		s, err := sniff.New(sniff.Options{Ports: ps}, emit)
		if err != nil {
			return err
		}
		_, err = sniff.Read(in, s)
		s.Flush(time.Now().UnixNano())
		return err
	case "requestlog":
		_, err := latency.ReadRequestLog(in, time.Local, func(r *latency.Request) error { emit(r); return nil })
		return err
	case "csv", "jsonl":
		return latency.ReadGeneric(in, func(r *latency.Request) error {
			r.APIKey = latency.APIProduce
			emit(r)
			return nil
		})
	}
	return fmt.Errorf("latency source %q is not a file", kind)
}
