package jfr

import (
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/testdata"
)

func summarize(t *testing.T, name string) (*Summary, error) {
	t.Helper()
	r, err := Open(testdata.JFR(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return Summarize(r)
}

var jdkSummaryLine = regexp.MustCompile(`(?m)^ (\S+)\s+(\d+)\s+(\d+)\s*$`)

// jdkSummary runs the JDK's `jfr summary` and returns its type table.
func jdkSummary(t *testing.T, path string) map[string]TypeCount {
	t.Helper()
	out, err := exec.Command(lookTool(t, "jfr"), "summary", path).Output()
	if err != nil {
		t.Fatalf("jfr summary: %v", err)
	}
	m := map[string]TypeCount{}
	for _, l := range jdkSummaryLine.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(l[2])
		b, _ := strconv.ParseInt(l[3], 10, 64)
		m[l[1]] = TypeCount{Name: l[1], Count: n, Bytes: b}
	}
	return m
}

// TestSummaryMatchesJDK: on single-producer recordings our summary equals
// the JDK's, type by type, counts and bytes.
func TestSummaryMatchesJDK(t *testing.T) {
	for _, name := range []string{"asprof-wall-lock.jfr", "jdk-profile.jfr", "asprof-wall-lock-nocstack-chunked.jfr"} {
		t.Run(name, func(t *testing.T) {
			s, err := summarize(t, name)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]TypeCount{}
			for _, tc := range s.Types {
				got[tc.Name] = tc
			}
			want := jdkSummary(t, testdata.JFR(t, name))
			if len(want) < 5 {
				t.Fatalf("parsed only %d lines of jfr summary", len(want))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("summary (-jdk +ours):\n%s", diff)
			}
		})
	}
}

// TestSummaryJfrsync: where JDK 17's jfr summary applies chunk 0's type ids
// to chunk 1 of a jfrsync recording, ours gives the true counts.
func TestSummaryJfrsync(t *testing.T) {
	name := "asprof-jfrsync-wall-lock.jfr"
	s, err := summarize(t, name)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tc := range s.Types {
		got[tc.Name] = tc.Count
	}
	want := map[string]int{wall: 19813, monitor: 11639, park: 3798, sleep: 59199, force: 4597, fwrite: 111020,
		fread: 3847, mwait: 11, produce: 110991, "jdk.CodeSweeperStatistics": 0}
	for k := range got {
		if _, ok := want[k]; !ok {
			delete(got, k)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if s.Events != 325569 || len(s.Chunks) != 2 || s.Chunks[0].Producer != "JDK" || s.Chunks[1].Producer != "async-profiler" {
		t.Errorf("events %d, chunks %+v", s.Events, s.Chunks)
	}
	if jdk := jdkSummary(t, testdata.JFR(t, name)); jdk["jdk.CodeSweeperStatistics"].Count != 19813 {
		t.Logf("note: the JDK's jfr summary no longer shows the miscount (%+v)", jdk["jdk.CodeSweeperStatistics"])
	}
}

func TestSummaryTruncated(t *testing.T) {
	s, err := summarize(t, "asprof-wall-lock-nocstack-chunked-truncated.jfr")
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("error %v, want ErrTruncated", err)
	}
	if len(s.Chunks) != 2 || s.Events != 17604 {
		t.Errorf("%d chunks, %d events; want 2, 17604", len(s.Chunks), s.Events)
	}
}
