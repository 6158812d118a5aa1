package jfr

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/lockscope/lockscope/internal/testdata"
)

// TestMappedPagesDropped reads a 7.5 MB single-chunk JDK recording (its
// constant pools are flushed all through the chunk) through a mapping that
// drops the pages the decoder has passed, and checks that pages were
// dropped and that every stack, thread and timestamp still equals what a
// reader of an in-memory copy sees: dropped pages are faulted back in from
// the page cache when a pool lookup needs them.
func TestMappedPagesDropped(t *testing.T) {
	p := testdata.JFR(t, "jdk-lockscope-jfc.jfr")
	type digest struct {
		events, frames, lines int64
		start                 int64
		threads               string
	}
	read := func(r *Reader, mapped bool) digest {
		var d digest
		for {
			c, err := r.NextChunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for c.Next() {
				ev := c.Event()
				d.events++
				d.start += ev.StartTicks()
				if st := ev.Stack(); st != nil {
					for _, f := range st.Frames {
						d.frames++
						d.lines += int64(f.Line) + int64(len(f.Method.FullName()))
					}
				}
				if th := ev.Thread(); th != nil && d.events%97 == 0 {
					d.threads += th.Name() + ";"
				}
			}
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
			if mapped && c.mapped != nil && c.Bytes() > releaseEvery+2<<20 && c.mapped.released == 0 {
				t.Errorf("chunk %d (%d bytes): no page dropped", c.Index, c.Bytes())
			}
		}
		return d
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := read(r, true)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := read(NewReader(bytes.NewReader(b)), false)
	if got != want {
		t.Errorf("mapped reading gave %+v, in-memory reading %+v", got, want)
	}
	if want.frames == 0 {
		t.Fatal("no frames read")
	}
}
