package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Status is how a check came out.
type Status int

// Statuses, from good to bad.
const (
	// Pass: lockscope works here as designed.
	Pass Status = iota
	// Info: worth knowing, nothing to do.
	Info
	// Warn: lockscope works, but results are poorer, or the host is set up
	// in a way known to cause tail latency.
	Warn
	// Fail: a capture cannot work until this is fixed.
	Fail
)

var statusNames = [...]string{"PASS", "INFO", "WARN", "FAIL"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// MarshalText writes the status as its upper-case name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads an upper- or lower-case status name.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if strings.EqualFold(n, string(b)) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}

// Check is one finding.
type Check struct {
	Status Status `json:"status"`
	// Name says what was checked, e.g. "btf" or "ext4 data mode".
	Name   string `json:"check"`
	Detail string `json:"detail"`
	// Fix says what to do; empty when nothing needs doing.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	// PID is the broker JVM that was checked, 0 if none.
	PID int `json:"pid,omitempty"`
	// LogDirs are the broker's log directories that were checked, as the
	// JVM names them.
	LogDirs []string `json:"log_dirs,omitempty"`
	Checks  []Check  `json:"checks"`
	// Filesystems are those of the log dirs, in the order found.
	Filesystems []Filesystem `json:"filesystems,omitempty"`
	// Experiment holds the rows of a filesystem experiment, when one was
	// given.
	Experiment []ExperimentRow `json:"experiment,omitempty"`
}

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

func (r *Report) add(s Status, name, detail, fix string) {
	r.Checks = append(r.Checks, Check{Status: s, Name: name, Detail: detail, Fix: fix})
}

// WriteText writes one aligned line per check, "STATUS  check  detail —
// fix", and a closing count.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range r.Checks {
		line := c.Detail
		if c.Fix != "" {
			line += " — " + c.Fix
		}
		// A tab or newline inside a field would break the columns.
		line = strings.NewReplacer("\t", " ", "\n", " ").Replace(line)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, line)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	_, err := fmt.Fprintf(w, "\n%d passed, %d info, %d warnings, %d failed\n", r.Count(Pass), r.Count(Info), r.Count(Warn), r.Count(Fail))
	if err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	if err := e.Encode(r); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}
