package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/jfrconv"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/report"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Files merge adds to a bundle besides the profiles named in package bundle.
const (
	SlowFolded     = "slow.folded"     // wall time in the windows, folded stacks
	BaselineFolded = "baseline.folded" // wall time outside them
	BlameProfile   = "blame.pb.gz"     // lock waiting charged to the holders' activity
	BlameFolded    = "blame.folded"    // the same in the slow windows (whole capture without windows)
	SummaryText    = "summary.txt"
	SummaryJSON    = "summary.json"
)

// MergeOptions choose how a bundle's requests become windows. Zero values
// keep what the bundle was captured with.
type MergeOptions struct {
	SLO  time.Duration
	Pad  time.Duration
	Kind string // "wire" or "service"
	// Top bounds each ranked list of the summary (default 10).
	Top int
	// Progress is told what recovering the bundle of a killed capture
	// waits for and finds (Recover); nil is quiet.
	Progress io.Writer
	// Latency joins a latency log that arrived after the capture
	// ("csv:FILE", "jsonl:FILE", "requestlog:FILE", "pcap:FILE"): its
	// requests make the windows instead of the bundle's own.
	Latency string
	// BrokerPorts are the broker's ports in a pcap Latency (default 9092).
	BrokerPorts []int
	// PhasesOf names the broker whose requests the latency source holds
	// when it is another than this bundle's (a follower's bundle in a
	// cluster capture): their phases are shown as that broker's, and are
	// not this broker's to claim in its verdict.
	PhasesOf string
	// Only limits the verdict to the waiting of the threads whose names
	// match these patterns (path.Match; a follower's fetchers from the
	// leader in a cluster capture); empty: all.
	Only []string
	// Followers is what captures of the followers in the same windows
	// found (a cluster capture's join): the verdict's answer names the
	// one that held up the requests' remote phase, or says none did.
	Followers *Followers
}

// Followers are the followers captured beside a broker, and the one that
// held its requests up (nil: none did).
type Followers struct {
	Captured []string
	Culprit  *Culprit
}

// Culprit is a broker and what held it up, in its own verdict's words.
type Culprit struct {
	Broker string `json:"broker"`
	Cause  string `json:"cause"`
}

// Validate checks the options without reading the bundle.
func (o *MergeOptions) Validate() error {
	if o.SLO < 0 || o.Pad < 0 {
		return fmt.Errorf("merge: negative SLO or padding (%v, %v)", o.SLO, o.Pad)
	}
	if o.Kind != "" {
		if _, err := latency.ParseMetric(o.Kind); err != nil {
			return fmt.Errorf("merge: latency kind: %w", err)
		}
	}
	if o.Top < 0 {
		return fmt.Errorf("merge: negative --top %d", o.Top)
	}
	if o.Latency != "" {
		kind, _, err := parseLatency(o.Latency)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		if kind == "kafka" || kind == "none" {
			return fmt.Errorf("merge: --latency %s: give a file (csv:, jsonl:, requestlog:, pcap:): live sniffing happens during a capture", o.Latency)
		}
		if _, err := checkLatencySource(o.Latency); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	return nil
}

// MergeBundle merges the bundle in dir and writes its outputs there. The
// bundle of a capture that was killed (a provisional meta.json) is
// recovered first (Recover), its meta.json saying what is missing.
func MergeBundle(dir string, o MergeOptions) (*merge.Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b, err := bundle.Open(dir)
	if errors.Is(err, bundle.ErrUnfinished) {
		if _, err = Recover(dir, o.Progress); err == nil {
			b, err = bundle.Open(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	wantFS := exists(b.Path(bundle.FSStreamFile))
	br, err := bundleWindows(b, o, wantFS)
	if err != nil {
		return nil, err
	}
	ws, reqs, phases := br.ws, br.fs, br.phases
	opt := merge.Options{Windows: ws, Clock: b.Meta.Clock, Target: b.Meta.Target.Name(), Only: o.Only}
	in := merge.Input{}
	if rec := b.Path(bundle.RecordingFile); exists(rec) {
		in.Recording = rec
	}
	if p := b.Path(bundle.OffCPUFile); exists(p) {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		defer f.Close()
		in.OffCPU = f
	}
	res, err := merge.Merge(in, opt)
	if err != nil {
		return nil, err
	}
	top := o.Top
	if top == 0 {
		top = 10
	}
	sum := merge.Summarize(res, opt, top)
	if phases != nil {
		phases.Of = o.PhasesOf
	}
	sum.Phases = phases
	sum.Replication = br.repl
	if wantFS {
		fo := merge.FSOptions{Top: top, Threads: res.Threads}
		if ws != nil {
			// A commit that takes half the latency budget by itself is
			// a cause worth naming.
			fo.LongCommit = ws.SLO / 2
		}
		if sum.FS, err = summarizeFS(b, reqs, ws, fo); err != nil {
			return nil, err
		}
	}
	vin := merge.VerdictInput(res, opt)
	vin.FS = fsEvidence(sum.FS)
	if o.PhasesOf == "" {
		vin.Phases = phases.Verdict()
		vin.Replication = br.repl.Verdict()
	}
	if vin.CPU, err = cpuEvidence(b, ws); err != nil {
		return nil, err
	}
	sum.Verdict = verdict.Decide(vin)
	if f := o.Followers; f != nil {
		if f.Culprit != nil {
			sum.Verdict.Blame(f.Captured, f.Culprit.Broker, f.Culprit.Cause)
		} else {
			sum.Verdict.Blame(f.Captured, "", "")
		}
	}
	blame, err := merge.BlameProfile(res.All)
	if err != nil {
		return nil, err
	}
	blameFolded := res.Slow
	if sum.Windows.Count == 0 {
		blameFolded = res.All
	}
	outputs := []struct {
		name  string
		write func(io.Writer) error
	}{
		{bundle.SlowProfile, res.Slow.Write},
		{bundle.BaselineProfile, res.Baseline.Write},
		{bundle.AllProfile, res.All.Write},
		{SlowFolded, folded(res.Slow)},
		{BaselineFolded, folded(res.Baseline)},
		{BlameProfile, blame.Write},
		{BlameFolded, foldedType(blameFolded, merge.TypeBlame)},
		{SummaryText, sum.WriteText},
		{SummaryJSON, func(w io.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(sum)
		}},
	}
	for _, out := range outputs {
		if err := writeFile(b.Path(out.name), out.write); err != nil {
			return nil, err
		}
	}
	// Last, as it shows the outputs above: report.html (internal/report).
	if err := report.WriteBundle(b, ws, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

func folded(p *profile.Profile) func(io.Writer) error { return foldedType(p, merge.TypeWall) }

// foldedType writes one sample type of p as folded stacks.
func foldedType(p *profile.Profile, typ string) func(io.Writer) error {
	return func(w io.Writer) error {
		for i, st := range p.SampleType {
			if st.Type == typ {
				return jfrconv.WriteFolded(w, p, i)
			}
		}
		return fmt.Errorf("no %s sample type", typ)
	}
}

// bundleWindows returns the SLO windows in CLOCK_MONOTONIC: rebuilt from
// the bundle's requests with the options' SLO, padding and kind, or the
// windows the capture wrote when it has no requests.
// With fsRequests it also returns the produce requests on CLOCK_MONOTONIC
// for the filesystem summary.
func bundleWindows(b *bundle.Bundle, o MergeOptions, fsRequests bool) (*bundleRequests, error) {
	meta := b.Meta.Latency
	slo, pad, kind := o.SLO, o.Pad, o.Kind
	if meta != nil {
		if slo == 0 {
			slo = meta.SLO
		}
		if pad == 0 {
			pad = meta.Pad
		}
		if kind == "" {
			kind = meta.Kind
		}
	}
	if kind == "" {
		kind = "service"
	}
	metric, err := latency.ParseMetric(kind)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if o.Latency != "" || exists(b.Path(bundle.RequestsFile)) {
		if slo == 0 {
			return nil, errors.New("merge: the bundle records no SLO: give one with --slo")
		}
		read := func(emit func(*latency.Request) error) error {
			f, err := os.Open(b.Path(bundle.RequestsFile))
			if err != nil {
				return err
			}
			defer f.Close()
			return latency.ReadRequestsJSONL(f, emit)
		}
		if o.Latency != "" {
			kind, path, _ := parseLatency(o.Latency)
			read = func(emit func(*latency.Request) error) error {
				var eerr error
				err := readLatencyFile(kind, path, o.BrokerPorts, func(r *latency.Request) {
					if eerr == nil {
						eerr = emit(r)
					}
				})
				return errors.Join(err, eerr)
			}
		}
		wb := latency.NewBuilder(slo, metric, pad)
		var reqs []merge.FSRequest
		var phases merge.PhaseAccumulator
		var repl merge.ReplicationAccumulator
		m := b.Meta.Clock
		if err := read(func(r *latency.Request) error {
			wb.Add(r)
			repl.Add(r, metric, slo)
			if r.APIKey == latency.APIProduce && r.Measured() {
				phases.Add(r.Breakdown, r.Latency(metric) > slo)
			}
			if fsRequests && r.APIKey == latency.APIProduce && r.Measured() && r.ResponseEnd != 0 && m.Validate() == nil {
				fr := merge.FSRequest{Start: m.ToMonotonic(r.SlowSince(metric)), End: m.ToMonotonic(r.ResponseEnd),
					OverSLO: r.Latency(metric) > slo}
				for _, p := range r.Partitions {
					fr.Partitions = append(fr.Partitions, p.String())
				}
				reqs = append(reqs, fr)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("merge: reading requests: %w", err)
		}
		if o.Latency == "" {
			// Followers' fetches the sniffer saw (a pcap given with
			// --latency has them among its requests).
			if err := readFetches(b, func(r *latency.Request) error { repl.Add(r, metric, slo); return nil }); err != nil {
				return nil, fmt.Errorf("merge: reading the followers' fetches: %w", err)
			}
		}
		ws, err := toMonotonic(wb.Build(), m)
		return &bundleRequests{ws: ws, fs: reqs, phases: phases.Summary(), repl: repl.Summary()}, err
	}
	if p := b.Path(bundle.WindowsFile); exists(p) {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		defer f.Close()
		ws, err := latency.ReadWindowSet(f)
		if err != nil {
			return nil, fmt.Errorf("merge: reading windows: %w", err)
		}
		ws, err = toMonotonic(ws, b.Meta.Clock)
		return &bundleRequests{ws: ws}, err
	}
	return &bundleRequests{}, nil
}

// bundleRequests is what a bundle's requests tell: the slow windows, the
// produce requests for the filesystem summary, their phases from a request
// log, and their replication from the followers' fetches on the wire.
type bundleRequests struct {
	ws     *latency.WindowSet
	fs     []merge.FSRequest
	phases *merge.PhaseSummary
	repl   *merge.ReplicationSummary
}

// readFetches reads the followers' fetches the sniffer wrote, if any.
func readFetches(b *bundle.Bundle, emit func(*latency.Request) error) error {
	f, err := os.Open(b.Path(bundle.FetchesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return latency.ReadRequestsJSONL(f, emit)
}

// summarizeFS reads the bundle's filesystem stream and relates it to the
// requests and windows.
func summarizeFS(b *bundle.Bundle, reqs []merge.FSRequest, ws *latency.WindowSet, o merge.FSOptions) (*merge.FSSummary, error) {
	f, err := os.Open(b.Path(bundle.FSStreamFile))
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	defer f.Close()
	d, err := bundle.ReadFS(f)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return merge.SummarizeFS(d, b.Meta.FS, reqs, ws, o), nil
}

// toMonotonic converts wall-clock windows with the bundle's clock mapping.
func toMonotonic(ws *latency.WindowSet, m clock.Mapping) (*latency.WindowSet, error) {
	if ws.Clock == latency.Monotonic {
		return ws, nil
	}
	if len(ws.Windows) > 0 {
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("merge: wall-clock windows need the bundle's clock pairs: %w", err)
		}
	}
	out := *ws
	out.Clock = latency.Monotonic
	out.Windows = make([]latency.Window, len(ws.Windows))
	for i, w := range ws.Windows {
		w.Start, w.End = m.ToMonotonic(w.Start), m.ToMonotonic(w.End)
		out.Windows[i] = w
	}
	return &out, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// writeFile writes a file through a temporary name, so a failure (a full
// disk) never leaves a half-written output where a good one was.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), bundle.Hint(err))
	}
	werr := f.Chmod(0o644)
	if werr == nil {
		werr = write(f)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", filepath.Base(path), bundle.Hint(werr))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return nil
}

// fsEvidence names, for the verdict, the filesystems the target's slow
// operations were on and their journals' long commits.
func fsEvidence(s *merge.FSSummary) *verdict.FSEvidence {
	if s == nil {
		return nil
	}
	ev := &verdict.FSEvidence{}
	long := map[string]int{}
	for _, j := range s.Journal {
		if j.Long > 0 || j.Count > 0 {
			ev.Journal = append(ev.Journal, fmt.Sprintf("%s on %s: %d, p99 %v, max %v, %d of at least %v",
				j.Kind, j.Dev, j.Count, j.P99.Round(time.Microsecond), j.Max.Round(time.Microsecond), j.Long, s.LongCommit))
		}
		long[j.Dev] += j.Long
	}
	// The files whose slow operations fell in the windows, most first.
	files := slices.Clone(s.Files)
	slices.SortStableFunc(files, func(a, b merge.FSFileStat) int { return b.SlowInWindows - a.SlowInWindows })
	for _, f := range files[:min(3, len(files))] {
		if f.SlowInWindows > 0 {
			ev.Journal = append(ev.Journal, fmt.Sprintf("%s of %s: %d over %v in the slow windows (%d in all, p99 %v, max %v)",
				f.Op, merge.ShortPath(f.Group), f.SlowInWindows, s.Min, f.Slow, f.P99.Round(time.Microsecond), f.Max.Round(time.Microsecond)))
		}
	}
	// Devices the slow operations were on, most long commits first.
	for _, d := range s.Devices {
		if len(s.Devices) > 1 && long[d.Dev] == 0 {
			continue
		}
		desc := d.Dev + " " + d.FSType
		var opts []string
		for _, o := range strings.Split(d.Options, ",") {
			if strings.HasPrefix(o, "data=") || o == "fast_commit" || strings.HasPrefix(o, "commit=") || strings.HasPrefix(o, "journal") {
				opts = append(opts, o)
			}
		}
		if d.FSType == "ext4" && !strings.Contains(d.Options, "data=") {
			opts = append(opts, "data=ordered") // ext4's default, not listed among the options
		}
		if len(opts) > 0 {
			desc += " (" + strings.Join(opts, ",") + ")"
		}
		ev.Devices = append(ev.Devices, desc+" at "+d.MountPoint)
	}
	return ev
}
