package doctor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ExperimentFile is the name lockscope doctor looks for in an experiment
// directory: the output of `lockscope compare --format json`.
const ExperimentFile = "compare.json"

// DefaultExperiment is where scripts/fs-experiment.sh writes its
// comparison unless told otherwise (its OUT): doctor shows it when no
// experiment is named and it exists.
const DefaultExperiment = "/tmp/lockscope-fs-experiment/" + ExperimentFile

// ExperimentRow is one input of a filesystem experiment: its name (the
// filesystem and mode it ran on, e.g. "ext4-ordered") and its produce
// latency.
type ExperimentRow struct {
	Name     string        `json:"name"`
	SLO      time.Duration `json:"slo_ns"`
	Requests int64         `json:"requests"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	Max      time.Duration `json:"max_ns"`
	OverSLO  int64         `json:"over_slo"`
	Share    float64       `json:"over_slo_share"`
}

// compareJSON is the part of `lockscope compare --format json`
// (internal/report.Comparison.WriteJSON) that doctor reads.
type compareJSON struct {
	Columns []struct {
		Name  string        `json:"name"`
		SLO   time.Duration `json:"slo_ns"`
		Stats *struct {
			Requests int64         `json:"requests"`
			P99      time.Duration `json:"p99_ns"`
			P999     time.Duration `json:"p999_ns"`
			Max      time.Duration `json:"max_ns"`
			OverSLO  int64         `json:"over_slo"`
			Share    float64       `json:"over_slo_share"`
		} `json:"stats"`
	} `json:"columns"`
}

// ReadExperiment reads the rows of a comparison: path is the JSON file or a
// directory holding ExperimentFile.
func ReadExperiment(path string) ([]ExperimentRow, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ExperimentFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading experiment: %w", err)
	}
	var c compareJSON
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading experiment %s: %w: want the output of lockscope compare --format json", path, err)
	}
	if len(c.Columns) == 0 {
		return nil, fmt.Errorf("reading experiment %s: no columns: want the output of lockscope compare --format json", path)
	}
	var rows []ExperimentRow
	for _, col := range c.Columns {
		if col.Stats == nil {
			return nil, fmt.Errorf("reading experiment %s: column %q has no stats", path, col.Name)
		}
		s := col.Stats
		rows = append(rows, ExperimentRow{Name: col.Name, SLO: col.SLO, Requests: s.Requests, P99: s.P99, P999: s.P999,
			Max: s.Max, OverSLO: s.OverSLO, Share: s.Share})
	}
	return rows, nil
}

// experimentChecks adds one line per row and names the row with the
// smallest share over the SLO.
func experimentChecks(r *Report, path string, implicit bool) {
	rows, err := ReadExperiment(path)
	if err == nil && implicit {
		r.add(Info, "experiment", "shown from "+path+", where scripts/fs-experiment.sh writes it", "--experiment names another")
	}
	if err != nil {
		r.add(Warn, "experiment", err.Error(), "run scripts/fs-experiment.sh, or lockscope compare --format json -o compare.json A B...")
		return
	}
	r.Experiment = rows
	best := -1
	for i, row := range rows {
		if row.Requests == 0 {
			r.add(Info, "experiment", row.Name+": no produce requests measured", "")
			continue
		}
		over := "no SLO"
		if row.SLO > 0 {
			over = fmt.Sprintf("%.2f%% over %s (%d)", 100*row.Share, row.SLO, row.OverSLO)
			if best < 0 || row.Share < rows[best].Share {
				best = i
			}
		}
		r.add(Info, "experiment", fmt.Sprintf("%s: %d requests, p99 %s, p99.9 %s, max %s, %s", row.Name, row.Requests,
			round(row.P99), round(row.P999), round(row.Max), over), "")
	}
	if best >= 0 && len(rows) > 1 {
		var others []string
		for i, row := range rows {
			if i != best && row.Requests > 0 && row.SLO > 0 {
				others = append(others, fmt.Sprintf("%s %.2f%%", row.Name, 100*row.Share))
			}
		}
		r.add(Info, "experiment", fmt.Sprintf("fewest requests over the SLO in lockscope's own experiment: %s (%.2f%%; %s)",
			rows[best].Name, 100*rows[best].Share, strings.Join(others, ", ")), "")
		for _, fs := range r.Filesystems {
			if i := matchRow(fs, rows); i >= 0 && i != best && rows[i].SLO > 0 && rows[i].Requests > 0 {
				r.add(Info, "experiment", fmt.Sprintf("%s is set up like %s, which had p99.9 %s and %.2f%% over the SLO against %s's %s and %.2f%%",
					fs.Mountpoint, rows[i].Name, round(rows[i].P999), 100*rows[i].Share, rows[best].Name, round(rows[best].P999), 100*rows[best].Share),
					"see the ext4/XFS advice above")
			}
		}
	}
}

// matchRow returns the index of the row whose name describes fs (e.g.
// "ext4-writeback" or "xfs", as an experiment names its runs), or -1.
func matchRow(fs Filesystem, rows []ExperimentRow) int {
	best, bestScore := -1, 0
	for i, row := range rows {
		name := strings.ToLower(row.Name)
		score := 0
		switch {
		case fs.Type == "xfs" && strings.Contains(name, "xfs"):
			score = 10
		case fs.Type == "ext4" && strings.Contains(name, "ext4"):
			fast := fs.FastCommit != nil && *fs.FastCommit
			if strings.Contains(name, "fast") != fast {
				continue // fast_commit tells the runs apart most
			}
			score = 1
			if fast {
				score += 3
			}
			nojournal := strings.Contains(name, "nojournal") || strings.Contains(name, "no-journal") || strings.Contains(name, "no_journal")
			modes := strings.Contains(name, "ordered") || strings.Contains(name, "writeback") || strings.Contains(name, "journal")
			switch {
			case fs.Journal != nil && !*fs.Journal:
				if nojournal {
					score += 3
				}
			case nojournal:
				continue
			case fs.DataMode != "" && strings.Contains(name, fs.DataMode):
				score += 2
			case fs.DataMode == "ordered" && !modes:
				score++ // "ext4" alone is ext4's default mode
			}
		}
		// A bare "ext4" row matches only the default mode.
		if score >= 2 && score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// round shortens a latency for a line of text.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
