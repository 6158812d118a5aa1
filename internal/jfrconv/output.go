package jfrconv

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// FoldedIndex is the sample value folded output carries for a kind: the
// sample count for cpu, wall and native profiles (what flame graphs of
// samples show), bytes or nanoseconds for the others.
func FoldedIndex(kind string) int {
	switch kind {
	case "cpu", "wall", "native":
		return 0
	}
	return 1
}

// WriteFolded writes p as folded stacks: one "root;...;leaf value" line per
// distinct stack, sorted, with value p's sample value number index.
func WriteFolded(w io.Writer, p *profile.Profile, index int) error {
	if index < 0 || index >= len(p.SampleType) {
		return fmt.Errorf("writing folded stacks: no sample value %d", index)
	}
	sums := map[string]int64{}
	var sb strings.Builder
	for _, s := range p.Sample {
		sb.Reset()
		for i := len(s.Location) - 1; i >= 0; i-- {
			for j := len(s.Location[i].Line) - 1; j >= 0; j-- {
				if sb.Len() > 0 {
					sb.WriteByte(';')
				}
				// ';' and ' ' separate frames and the value.
				name := s.Location[i].Line[j].Function.Name
				name = strings.ReplaceAll(name, ";", ":")
				sb.WriteString(strings.ReplaceAll(name, " ", "_"))
			}
		}
		sums[sb.String()] += s.Value[index]
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriterSize(w, 1<<16)
	for _, k := range keys {
		if sums[k] == 0 {
			continue
		}
		bw.WriteString(k)
		bw.WriteByte(' ')
		bw.WriteString(strconv.FormatInt(sums[k], 10))
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing folded stacks: %w", err)
	}
	return nil
}

// Run converts opt.Input and writes opt.Output (stdout for "" or "-").
// The output file is written to a temporary name and renamed, so a failed
// conversion never leaves a half-written profile behind.
func Run(opt Options, stdout io.Writer) (Stats, error) {
	if err := opt.Validate(); err != nil {
		return Stats{}, err
	}
	p, st, err := ProfileFile(opt.Input, opt, 0)
	if err != nil {
		return st, err
	}
	write := func(w io.Writer) error {
		if opt.Format == "folded" {
			return WriteFolded(w, p, FoldedIndex(opt.Event))
		}
		// pprof's Write uses gzip's default level; the fastest level
		// halves the time of writing big profiles for a few percent of
		// size, and readers do not care.
		zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return fmt.Errorf("writing profile: %w", err)
		}
		if err := p.WriteUncompressed(zw); err != nil {
			return fmt.Errorf("writing profile: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("writing profile: %w", err)
		}
		return nil
	}
	if opt.Output == "" || opt.Output == "-" {
		return st, write(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(opt.Output), "."+filepath.Base(opt.Output)+".*")
	if err != nil {
		return st, fmt.Errorf("creating output: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return st, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return st, fmt.Errorf("writing output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return st, fmt.Errorf("writing output: %w", err)
	}
	if err := os.Rename(tmp.Name(), opt.Output); err != nil {
		return st, fmt.Errorf("renaming output: %w", err)
	}
	return st, nil
}
