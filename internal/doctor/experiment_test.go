package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lockscope/lockscope/internal/report"
)

// TestExperiment reads what lockscope compare writes: three latency files,
// one per filesystem, compared by the real report package.
func TestExperiment(t *testing.T) {
	dir := t.TempDir()
	// Every 100th request is slow; how slow depends on the filesystem.
	// Named as scripts/fs-experiment.sh names its runs.
	slow := map[string]time.Duration{"ext4-ordered": 3 * time.Second, "ext4-writeback": 800 * time.Millisecond, "ext4-fastcommit": 500 * time.Millisecond, "xfs": 40 * time.Millisecond}
	var inputs []string
	for _, name := range []string{"ext4-ordered", "ext4-writeback", "ext4-fastcommit", "xfs"} {
		var b strings.Builder
		b.WriteString("start_ms,latency_ms,topic\n")
		for i := range 2000 {
			lat := 5 * time.Millisecond
			if i%100 == 0 {
				lat = slow[name]
			}
			fmt.Fprintf(&b, "%d,%g,orders\n", 1735812000000+int64(i)*10, float64(lat)/float64(time.Millisecond))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, "csv:"+p)
	}
	c, err := report.Compare(inputs, report.CompareOptions{SLO: 65 * time.Millisecond, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, ExperimentFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	rows, err := ReadExperiment(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wantRows []ExperimentRow
	for _, col := range c.Columns {
		s := col.Stats
		wantRows = append(wantRows, ExperimentRow{Name: col.Name, SLO: col.SLO, Requests: s.Requests, P99: s.P99, P999: s.P999, Max: s.Max, OverSLO: s.OverSLO, Share: s.Share})
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if rows[0].OverSLO != 20 || rows[3].OverSLO != 0 {
		t.Errorf("over the SLO: %+v", rows)
	}

	yes, no := true, false
	r := &Report{Filesystems: []Filesystem{
		{Mountpoint: "/var/lib/kafka", Type: "ext4", Journal: &yes, DataMode: "ordered", FastCommit: &no},
		{Mountpoint: "/data/fast", Type: "ext4", Journal: &yes, DataMode: "ordered", FastCommit: &yes},
		{Mountpoint: "/data/xfs", Type: "xfs"},
	}}
	experimentChecks(r, filepath.Join(dir, ExperimentFile), false)
	t.Logf("\n%s", text(r))
	want(t, r, Info, "experiment", "ext4-ordered: 2000 requests, p99 5ms, p99.9 3s, max 3s, 1.00% over 65ms (20)")
	want(t, r, Info, "experiment", "fewest requests over the SLO in lockscope's own experiment: xfs (0.00%; ext4-ordered 1.00%, ext4-writeback 1.00%, ext4-fastcommit 1.00%)")
	want(t, r, Info, "experiment", "/data/fast is set up like ext4-fastcommit")
	if len(find(r, "experiment", "/data/xfs")) != 0 {
		t.Errorf("the best run compared with itself:\n%s", text(r))
	}

	want(t, r, Info, "experiment", "/var/lib/kafka is set up like ext4-ordered, which had p99.9 3s and 1.00% over the SLO against xfs's 40ms and 0.00%")

	// Not a comparison.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"columns":[]}`), 0o644)
	r = &Report{}
	experimentChecks(r, bad, false)
	want(t, r, Warn, "experiment", "no columns")
	if _, err := ReadExperiment(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
