package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/testdata"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errb.String(), err
}

func TestJFRSummaryJSON(t *testing.T) {
	out, err := run(t, "jfr", "summary", "--json", testdata.JFR(t, "asprof-jfrsync-wall-lock.jfr"))
	if err != nil {
		t.Fatal(err)
	}
	var s jfr.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary JSON: %v\n%s", err, out)
	}
	if s.Events != 325569 || len(s.Chunks) != 2 {
		t.Errorf("events %d, chunks %d", s.Events, len(s.Chunks))
	}
}

func TestJFRSummaryTruncated(t *testing.T) {
	out, err := run(t, "jfr", "summary", testdata.JFR(t, "asprof-wall-lock-nocstack-chunked-truncated.jfr"))
	if !errors.Is(err, jfr.ErrTruncated) || !strings.Contains(err.Error(), "chunk 2 at byte 518016") {
		t.Fatalf("error %v, want the truncation at chunk 2, byte 518016", err)
	}
	if !strings.Contains(out, "Events: 17604") {
		t.Errorf("complete chunks not summarized:\n%s", out)
	}
}

func TestConvertCommand(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "lock.pb.gz")
	if _, err := run(t, "convert", "--event", "lock", "-o", dst, testdata.JFR(t, "asprof-wall-lock.jfr")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	if n != 10939+4326 || p.SampleType[1].Type != "delay" {
		t.Errorf("%d contentions of type %v", n, p.SampleType)
	}
	if _, err := run(t, "convert", "--event", "bogus", testdata.JFR(t, "asprof-wall-lock.jfr")); err == nil || !strings.Contains(err.Error(), "unknown event kind") {
		t.Errorf("bad --event: %v", err)
	}
	out, err := run(t, "convert", "--format", "folded", "--event", "wall", testdata.JFR(t, "asprof-wall-lock.jfr"))
	if err != nil || !strings.Contains(out, "java.lang.Thread.run;") {
		t.Errorf("folded: %v\n%.300s", err, out)
	}
}
