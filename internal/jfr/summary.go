package jfr

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Summary describes a recording: its chunks and how many events of each
// type it holds. Counts use each chunk's own metadata, so recordings whose
// chunks come from different producers (async-profiler jfrsync) are counted
// right, unlike JDK 17's `jfr summary`.
type Summary struct {
	Start    int64          `json:"startNanos"`    // epoch ns of the first chunk
	Duration int64          `json:"durationNanos"` // to the end of the last complete chunk
	Bytes    int64          `json:"bytes"`         // in complete chunks
	Events   int            `json:"events"`        // event records, without metadata and checkpoints
	Chunks   []ChunkSummary `json:"chunks"`
	Types    []TypeCount    `json:"types"` // most frequent first, then by name
}

// ChunkSummary describes one chunk.
type ChunkSummary struct {
	Index         int    `json:"index"`
	Offset        int64  `json:"offset"`
	Bytes         int64  `json:"bytes"`
	Version       string `json:"version"`
	Producer      string `json:"producer"`
	StartNanos    int64  `json:"startNanos"`
	DurationNanos int64  `json:"durationNanos"`
	StartTicks    int64  `json:"startTicks"`
	TicksPerSec   int64  `json:"ticksPerSecond"`
	Compressed    bool   `json:"compressedIntegers"`
	Events        int    `json:"events"`
	UnknownEvents int    `json:"unknownEvents,omitempty"`
}

// TypeCount is the number and total size of the records of one type.
// Metadata and checkpoint records are listed as jdk.Metadata and
// jdk.CheckPoint, as the JDK's tool does.
type TypeCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Bytes int64  `json:"bytes"`
}

// Summarize reads every chunk of r. A truncated or corrupt recording gives
// the summary of its complete chunks together with the *Error.
func Summarize(r *Reader) (*Summary, error) {
	s := &Summary{}
	byName := map[string]*TypeCount{}
	add := func(name string, n int, b int64) {
		tc := byName[name]
		if tc == nil {
			tc = &TypeCount{Name: name}
			byName[name] = tc
		}
		tc.Count += n
		tc.Bytes += b
	}
	var err error
	for {
		var c *Chunk
		c, err = r.NextChunk()
		if err != nil {
			break
		}
		// Declared types with no events are listed with 0, as jfr does.
		for _, t := range c.Metadata.Types {
			if t.IsEvent() {
				add(t.Name, 0, 0)
			}
		}
		cs := ChunkSummary{
			Index: c.Index, Offset: c.Offset, Bytes: c.Header.Size,
			Version:  fmt.Sprintf("%d.%d", c.Header.Major, c.Header.Minor),
			Producer: c.Producer.String(), StartNanos: c.Header.StartNanos, DurationNanos: c.Header.DurationNanos,
			StartTicks: c.Header.StartTicks, TicksPerSec: c.Header.TicksPerSecond, Compressed: c.Header.CompressedInts(),
		}
		// Count per chunk first, so that a chunk that turns out corrupt
		// adds nothing.
		counts := map[*Type]*TypeCount{}
		for c.Next() {
			ev := c.Event()
			tc := counts[ev.Type]
			if tc == nil {
				tc = &TypeCount{}
				counts[ev.Type] = tc
			}
			tc.Count++
			tc.Bytes += int64(ev.Size())
			cs.Events++
		}
		if err = c.Err(); err != nil {
			break
		}
		for t, tc := range counts {
			add(t.Name, tc.Count, tc.Bytes)
		}
		add("jdk.Metadata", c.MetadataRecords, c.MetadataBytes)
		add("jdk.CheckPoint", c.CheckpointRecords, c.CheckpointBytes)
		cs.UnknownEvents = c.UnknownEvents
		if len(s.Chunks) == 0 {
			s.Start = c.Header.StartNanos
		}
		if end := c.Header.StartNanos + c.Header.DurationNanos - s.Start; end > s.Duration {
			s.Duration = end
		}
		s.Bytes += c.Header.Size
		s.Events += cs.Events
		s.Chunks = append(s.Chunks, cs)
	}
	for _, tc := range byName {
		s.Types = append(s.Types, *tc)
	}
	sort.Slice(s.Types, func(i, j int) bool {
		a, b := s.Types[i], s.Types[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Name < b.Name
	})
	if err == io.EOF {
		err = nil
	}
	return s, err
}

// SummaryOptions are the settings of `lockscope jfr summary`.
type SummaryOptions struct {
	Path string
	JSON bool
}

// Validate checks the options without opening the file.
func (o *SummaryOptions) Validate() error {
	if o.Path == "" {
		return fmt.Errorf("no recording given")
	}
	return nil
}

// WriteText prints the summary as a table in the manner of the JDK's
// `jfr summary`, with a line per chunk added.
func (s *Summary) WriteText(w io.Writer, path string) error {
	ew := &errWriter{w: w}
	ew.printf("\n Recording: %s\n\n", path)
	ew.printf(" Chunks: %d\n", len(s.Chunks))
	if len(s.Chunks) == 0 {
		ew.printf(" (no complete chunk)\n")
		return ew.err
	}
	ew.printf(" Size: %d bytes\n", s.Bytes)
	ew.printf(" Start: %s (UTC)\n", time.Unix(0, s.Start).UTC().Format("2006-01-02 15:04:05.000"))
	ew.printf(" Duration: %s\n", time.Duration(s.Duration).Round(time.Millisecond))
	ew.printf(" Events: %d\n\n", s.Events)
	ew.printf(" %5s %10s %10s %7s %-15s %-23s %10s %9s\n", "Chunk", "Offset", "Bytes", "Version", "Producer", "Start (UTC)", "Duration", "Events")
	for _, c := range s.Chunks {
		ew.printf(" %5d %10d %10d %7s %-15s %-23s %10s %9d\n", c.Index, c.Offset, c.Bytes, c.Version, c.Producer,
			time.Unix(0, c.StartNanos).UTC().Format("2006-01-02 15:04:05.000"),
			time.Duration(c.DurationNanos).Round(time.Millisecond), c.Events)
		if c.UnknownEvents > 0 {
			ew.printf("       (%d records of undeclared types skipped)\n", c.UnknownEvents)
		}
	}
	ew.printf("\n %-45s %9s %14s\n", "Event Type", "Count", "Size (bytes)")
	ew.printf(" %s\n", strings.Repeat("=", 70))
	for _, t := range s.Types {
		ew.printf(" %-45s %9d %14d\n", t.Name, t.Count, t.Bytes)
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
