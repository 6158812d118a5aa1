package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
)

// Outcomes of a capture, as /captures and the metrics name them.
const (
	OutcomeRunning      = "running"
	OutcomeOK           = "ok"
	OutcomeInterrupted  = "interrupted"   // SIGTERM or preempted: what was collected is written
	OutcomeTargetExited = "target_exited" // the JVM exited during the capture
	OutcomeFailed       = "failed"
)

// Record is what serve knows of one capture: /captures lists them. It is
// kept as ID.json beside the bundle directory ID/, so that a capture that
// failed before writing a bundle is listed too, and so that the bundle
// stays exactly what capture wrote.
type Record struct {
	ID      string            `json:"id"`
	Started time.Time         `json:"started"`
	Ended   time.Time         `json:"ended,omitzero"`
	Trigger string            `json:"trigger"`
	Labels  map[string]string `json:"labels,omitempty"`
	Outcome string            `json:"outcome"`
	Error   string            `json:"error,omitempty"`
	PID     int               `json:"pid,omitempty"`
	// Size is the bundle's size on disk in bytes.
	Size     int64 `json:"size"`
	Requests int64 `json:"requests"`
	OverSLO  int64 `json:"over_slo"`
	// Summary is the merge summary's headline: the first blame chain, else
	// the first lock hot spot, else the windows.
	Summary string   `json:"summary,omitempty"`
	Files   []string `json:"files,omitempty"`
}

// validName is what an id or a bundle file name may be: no separators, no
// dot-dot, nothing hidden.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// store is the bundle directory. Its methods are safe for concurrent use.
type store struct {
	dir  string
	root *os.Root // serves files: os.Root refuses paths and symlinks leaving dir
	mu   sync.Mutex
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating bundles.dir: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening bundles.dir: %w", err)
	}
	return &store{dir: dir, root: root}, nil
}

func (s *store) Close() error { return s.root.Close() }

// newID returns a fresh capture id: time first, so ids sort by age.
func (s *store) newID(now time.Time, trigger string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := now.UTC().Format("20060102T150405Z") + "-" + trigger
	id := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(s.dir, id+".json")); errors.Is(err, fs.ErrNotExist) {
			break
		}
		id = fmt.Sprintf("%s-%d", base, i)
	}
	// Reserve it at once.
	_ = writeJSON(filepath.Join(s.dir, id+".json"), &Record{ID: id, Started: now, Trigger: trigger, Outcome: OutcomeRunning})
	return id
}

func (s *store) bundleDir(id string) string { return filepath.Join(s.dir, id) }

func (s *store) save(r *Record) error {
	if r.Outcome != OutcomeRunning {
		r.Size = dirSize(s.bundleDir(r.ID))
		r.Files = nil
		if es, err := os.ReadDir(s.bundleDir(r.ID)); err == nil {
			for _, e := range es {
				r.Files = append(r.Files, e.Name())
			}
		}
	}
	return writeJSON(filepath.Join(s.dir, r.ID+".json"), r)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("writing capture record: %w", err)
	}
	return os.Rename(tmp, path)
}

// list returns the records, newest first.
func (s *store) list() ([]Record, error) {
	es, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing bundles: %w", err)
	}
	var out []Record
	for _, e := range es {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validName.MatchString(id) || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue // removed by retention meanwhile
		}
		var r Record
		if json.Unmarshal(b, &r) != nil || r.ID != id {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// recover settles the records a previous serve left running (it was
// killed mid-capture): failed, or interrupted when the bundle was
// finished. Without this they would stay "running" and retention would
// never remove them.
func (s *store) recover() ([]string, error) {
	rs, err := s.list()
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range rs {
		r := &rs[i]
		if r.Outcome != OutcomeRunning {
			continue
		}
		r.Outcome, r.Error = OutcomeFailed, "lockscope serve stopped during this capture (killed?); the bundle may be partial"
		if b, err := bundle.Open(s.bundleDir(r.ID)); err == nil {
			r.Outcome, r.Ended = OutcomeInterrupted, b.Meta.Created.Add(time.Duration(b.Meta.End-b.Meta.Start))
		}
		if err := s.save(r); err != nil {
			return ids, err
		}
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// usage is the bytes the finished bundles take.
func (s *store) usage() int64 {
	rs, _ := s.list()
	var n int64
	for _, r := range rs {
		if r.Outcome == OutcomeRunning {
			n += dirSize(s.bundleDir(r.ID))
		} else {
			n += r.Size
		}
	}
	return n
}

// retain removes the oldest finished captures until at most maxCount are
// kept and they take at most maxBytes (zero: no limit). Running captures
// are never removed. It returns the ids removed.
func (s *store) retain(maxCount int, maxBytes int64) ([]string, error) {
	rs, err := s.list()
	if err != nil {
		return nil, err
	}
	var done []Record
	var total int64
	for _, r := range rs {
		if r.Outcome != OutcomeRunning {
			done = append(done, r)
			total += r.Size
		}
	}
	var removed []string
	var errs []error
	// done is newest first: remove from its end.
	for len(done) > 0 && ((maxCount > 0 && len(done) > maxCount) || (maxBytes > 0 && total > maxBytes)) {
		r := done[len(done)-1]
		done = done[:len(done)-1]
		if err := os.RemoveAll(s.bundleDir(r.ID)); err != nil {
			errs = append(errs, fmt.Errorf("removing bundle %s: %w", r.ID, err))
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, r.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		total -= r.Size
		removed = append(removed, r.ID)
	}
	return removed, errors.Join(errs...)
}

// free is the space left for unprivileged writers on the bundles' filesystem.
func (s *store) free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", s.dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// open opens a bundle's file for serving. Names are checked first (a clear
// 400), then os.Root refuses anything that would leave the bundle
// directory, symlinks included; only regular files are served.
func (s *store) open(id, name string) (*os.File, fs.FileInfo, error) {
	if !validName.MatchString(id) || !validName.MatchString(name) {
		return nil, nil, errBadName
	}
	f, err := s.root.Open(id + "/" + name)
	if err != nil {
		return nil, nil, fs.ErrNotExist
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, st, nil
}

var errBadName = errors.New("bad capture id or file name")

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
