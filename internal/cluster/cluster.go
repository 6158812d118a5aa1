// Package cluster captures several brokers of one cluster at once and
// joins their bundles: a produce request with acks=all waits on its leader
// for the followers to fetch its records, and no thread of the leader works
// on it meanwhile, so what held it up is on a follower. The brokers are
// captured in the same windows (one latency source, one clock: they run on
// this host), each into its own bundle; then the followers' verdicts in
// the leader's slow windows name the one that held the requests up, and
// the leader's verdict says so.
//
// The layout on disk is the cluster file (cluster.json, the contract
// lockscope merge reads again), a summary (cluster.txt), and one bundle
// per broker beside them.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/kafkaconf"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Files of a cluster capture's directory.
const (
	File        = "cluster.json"
	SummaryText = "cluster.txt"
	Format      = "lockscope-cluster"
)

// Options are a cluster capture's settings: Capture is every broker's
// capture (its PID, Out, Progress and NoMerge are set per broker).
type Options struct {
	Capture capture.Options
	PIDs    []int
	Out     string
}

// Member is one broker of a cluster capture.
type Member struct {
	PID    int    `json:"pid"`
	Broker string `json:"broker_id,omitempty"`
	// Name is how answers name it: "broker 2 (pid 4242)".
	Name string `json:"name"`
	// Dir is its bundle, relative to the cluster directory.
	Dir string `json:"dir"`
	// Served: the latency source's requests were sent to this broker.
	Served bool `json:"served"`
	// Error is why its capture or merge failed, if it did.
	Error string `json:"error,omitempty"`
	// Status and Answer are its own verdict's.
	Status verdict.Status `json:"status,omitempty"`
	Answer string         `json:"answer,omitempty"`
}

// Result is the cluster file.
type Result struct {
	Format  string   `json:"format"`
	Latency string   `json:"latency"`
	Members []Member `json:"members"`
	// Answer is the cluster's: the served broker's verdict with the
	// follower that held its requests up named in it, when one did.
	Answer  string           `json:"answer,omitempty"`
	Culprit *capture.Culprit `json:"culprit,omitempty"`
}

// Validate checks the options without touching the processes.
func (o *Options) Validate() error {
	if len(o.PIDs) < 2 {
		return fmt.Errorf("a cluster capture needs two pids or more, got %d", len(o.PIDs))
	}
	seen := map[int]bool{}
	for _, p := range o.PIDs {
		if p <= 0 || seen[p] {
			return fmt.Errorf("--pid %d: each broker's pid once, all positive", p)
		}
		seen[p] = true
	}
	if o.Out == "" {
		return errors.New("-o: give the directory to write the cluster capture to")
	}
	c := o.Capture
	c.PID, c.Out = o.PIDs[0], filepath.Join(o.Out, "x")
	return c.Validate()
}

// Run captures every broker at once, then joins the bundles (Merge). Each
// capture that fails is reported; the others are kept and joined.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Out); err == nil {
		return nil, fmt.Errorf("%s exists: give a new directory for the cluster capture", o.Out)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("cluster capture: %w", err)
	}
	res := &Result{Format: Format, Latency: o.Capture.Latency}
	served := servedBy(o.Capture.Latency, o.PIDs)
	for _, pid := range o.PIDs {
		m := Member{PID: pid, Served: pid == served}
		if c, err := kafkaconf.ReadProcess(pid); err == nil {
			m.Broker = c.BrokerID()
		}
		m.Name, m.Dir = fmt.Sprintf("pid %d", pid), fmt.Sprintf("pid-%d", pid)
		if m.Broker != "" {
			m.Name, m.Dir = fmt.Sprintf("broker %s (pid %d)", m.Broker, pid), "broker-"+m.Broker
		}
		res.Members = append(res.Members, m)
	}
	progress := o.Capture.Progress
	if progress == nil {
		progress = io.Discard
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range res.Members {
		m := &res.Members[i]
		co := o.Capture
		co.PID, co.Out, co.NoMerge = m.PID, filepath.Join(o.Out, m.Dir), true
		co.Progress = &prefixWriter{w: progress, mu: &mu, prefix: m.Name + ": "}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := capture.Run(ctx, co); err != nil {
				mu.Lock()
				m.Error = err.Error()
				errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := write(o.Out, res); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	joined, err := Merge(o.Out, capture.MergeOptions{})
	if err != nil {
		errs = append(errs, err)
	}
	return joined, errors.Join(errs...)
}

// Merge (re)merges the bundles of the cluster capture in dir, each with
// base's options, and joins them: the followers first, in the served
// broker's windows, then the served broker with the follower that held its
// requests up named. It writes cluster.json and cluster.txt.
func Merge(dir string, base capture.MergeOptions) (*Result, error) {
	res, err := Read(dir)
	if err != nil {
		return nil, err
	}
	var served *Member
	for i := range res.Members {
		if res.Members[i].Served {
			served = &res.Members[i]
		}
	}
	var errs []error
	var culprit *capture.Culprit
	var captured []string
	best := -1.0
	for i := range res.Members {
		m := &res.Members[i]
		if m.Served {
			continue
		}
		mo := base
		if served != nil {
			// In the leader's windows, what its followers' replica
			// fetchers (what a follower does for its leader's requests)
			// waited for.
			mo.PhasesOf, mo.Only = served.Name, []string{fetchers(served.Broker)}
		}
		sum, err := mergeMember(dir, m, mo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		captured = append(captured, m.Name)
		if c, score := culpritOf(m.Name, sum.Verdict); c != nil && score > best {
			culprit, best = c, score
		}
	}
	if served != nil {
		mo := base
		mo.Followers = &capture.Followers{Captured: captured, Culprit: culprit}
		sum, err := mergeMember(dir, served, mo)
		if err != nil {
			errs = append(errs, err)
		} else if v := sum.Verdict; v != nil {
			res.Answer = v.Answer
			if v.Phase != nil && culprit != nil {
				res.Culprit = culprit
			}
		}
	}
	if err := write(dir, res); err != nil {
		errs = append(errs, err)
	}
	if err := writeText(dir, res); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// mergeMember merges one broker's bundle, noting its answer or error.
func mergeMember(dir string, m *Member, mo capture.MergeOptions) (*merge.Summary, error) {
	sum, err := capture.MergeBundle(filepath.Join(dir, m.Dir), mo)
	if err != nil {
		if m.Error == "" {
			m.Error = err.Error()
		}
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	if v := sum.Verdict; v != nil {
		m.Status, m.Answer = v.Status, v.Answer
	}
	return sum, nil
}

// fetchers is the name pattern of a follower's replica fetcher threads
// from the leader with id leader (all of them when it is not known):
// Kafka names them ReplicaFetcherThread-FETCHER-LEADER, and so does the
// demo broker.
func fetchers(leader string) string {
	if leader == "" {
		return "ReplicaFetcherThread-*"
	}
	return "ReplicaFetcherThread-*-" + leader
}

// minCulpritRate is the least excess a follower's fetchers' first cause
// must have, in thread-seconds per second of slow window, to be blamed for
// the leader's remote time: a fetcher that held replication up was held
// up itself for a good part of those windows (0.13–0.46 in the scenarios,
// the least with a loaded journal in a CI run), where the fetchers of a
// follower that did not, on a loaded machine, showed at most 0.05.
const minCulpritRate = 0.1

// culpritOf is what a follower's verdict on its replica fetchers blames,
// with a score that ranks followers: the excess rate of its first cause,
// when it stands out and holds the fetchers up enough; nil otherwise.
func culpritOf(name string, v *verdict.Verdict) (*capture.Culprit, float64) {
	if v == nil || v.SlowTime <= 0 || len(v.Findings) == 0 || !v.Findings[0].StandsOut {
		return nil, 0
	}
	pick := &v.Findings[0]
	score := pick.Excess.Seconds() / v.SlowTime.Seconds()
	if score < minCulpritRate {
		return nil, 0
	}
	_, what, ok := strings.Cut(pick.Sentence, "excess waiting: ")
	if !ok {
		what = pick.Sentence
	}
	return &capture.Culprit{Broker: name, Cause: fmt.Sprintf("%s (%.0f%% of its excess waiting in those windows)", what, 100*pick.Share)}, score
}

// Read reads the cluster file in dir.
func Read(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, File))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: not a cluster capture", dir, File)
	}
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, File), err)
	}
	if res.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q", filepath.Join(dir, File), res.Format, Format)
	}
	for _, m := range res.Members {
		if m.Dir == "" || filepath.IsAbs(m.Dir) || strings.Contains(m.Dir, "..") {
			return nil, fmt.Errorf("%s: member %s has bundle dir %q, want a name inside the cluster directory", filepath.Join(dir, File), m.Name, m.Dir)
		}
	}
	return &res, nil
}

// IsCluster reports whether dir holds a cluster capture.
func IsCluster(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, File))
	return err == nil
}

func write(dir string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, File), append(b, '\n'))
}

// writeText writes the cluster's summary: the answer, then each broker's.
func writeText(dir string, res *Result) error {
	var b strings.Builder
	switch {
	case res.Answer != "":
		b.WriteString(res.Answer + "\n\n")
	default:
		b.WriteString("No broker's requests were in the latency source (" + res.Latency + "), so there is no leader to explain: each broker's own verdict follows.\n\n")
	}
	served := slices.ContainsFunc(res.Members, func(m Member) bool { return m.Served })
	for _, m := range res.Members {
		switch {
		case m.Served:
			fmt.Fprintf(&b, "%s, the broker the requests were sent to: bundle %s\n", m.Name, m.Dir)
		case served:
			fmt.Fprintf(&b, "%s, follower: bundle %s\n", m.Name, m.Dir)
		default:
			fmt.Fprintf(&b, "%s: bundle %s\n", m.Name, m.Dir)
		}
		switch {
		case m.Error != "":
			fmt.Fprintf(&b, "  failed: %s\n", m.Error)
		case m.Answer != "":
			fmt.Fprintf(&b, "  %s\n", m.Answer)
		}
	}
	return writeAtomic(filepath.Join(dir, SummaryText), []byte(b.String()))
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// prefixWriter prefixes each line written to w, under mu (the captures
// write at once).
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := slices.Index(p.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
