package continuous

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/pyroscope"
)

// DefaultPeriod is how long each capture lasts when Options.Period is zero.
const DefaultPeriod = 60 * time.Second

// Options configure continuous mode.
type Options struct {
	// Capture is the template of every period's capture (PID, SLO,
	// Latency, Profiler, ...). Run sets Duration to Period and Out to a
	// fresh directory per period.
	Capture capture.Options
	// Period is each capture's length (default DefaultPeriod). Between two
	// periods the JVM is not profiled for the time a capture takes to stop,
	// merge and start again (about a second or two).
	Period time.Duration
	// Pyroscope is where profiles go. Labels host and broker are added
	// when absent: the host name, and host:port of the sniffed broker port
	// (the host name when latency is not sniffed).
	Pyroscope pyroscope.Options
	// KeepBundles, when set, is a directory each period's bundle is kept in
	// (named by time, no retention); otherwise bundles are written to a
	// temporary directory removed once their profiles are queued.
	KeepBundles string
	// FlushTimeout bounds how long Run keeps pushing queued profiles after
	// ctx ends (default 10s).
	FlushTimeout time.Duration
	// Acquire, when set, is called before each capture and its release
	// after it: the gate that keeps one capture at a time on a host (owned
	// by serve). An error from it skips the period.
	Acquire func(ctx context.Context) (release func(), err error)
	// AcquirePreemptible, set instead of Acquire, also hands the gate the
	// period's cancel: a triggered capture may call preempt to end the
	// period early and take the JVM. The preempted period is still merged
	// and pushed, and Run goes on with the next period, which waits at
	// the gate as usual.
	AcquirePreemptible func(ctx context.Context, preempt func()) (release func(), err error)
	// OnReport receives each period's capture report (merged or not)
	// while its bundle directory (Report.Dir) still exists, before it is
	// removed and before the gate is released.
	OnReport func(*capture.Report)
	// OnStats receives the pusher's counters after each period.
	OnStats func(pyroscope.Stats)
	// Logf receives a line per period and failures; nil is quiet.
	Logf func(string, ...any)
}

// Validate checks the options without touching the JVM or the network.
func (o *Options) Validate() error {
	var errs []error
	if o.Period < 0 {
		errs = append(errs, fmt.Errorf("--period %v: must be positive", o.Period))
	} else if o.Period != 0 && o.Period < time.Second {
		errs = append(errs, fmt.Errorf("--period %v: at least 1s (each period attaches, profiles and merges)", o.Period))
	}
	if o.Acquire != nil && o.AcquirePreemptible != nil {
		errs = append(errs, errors.New("continuous: set Acquire or AcquirePreemptible, not both"))
	}
	if o.FlushTimeout < 0 {
		errs = append(errs, fmt.Errorf("flush timeout %v: must not be negative", o.FlushTimeout))
	}
	c := o.Capture
	c.Duration = o.period()
	if c.Out == "" {
		c.Out = "per-period" // set by Run
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Pyroscope.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *Options) period() time.Duration {
	if o.Period == 0 {
		return DefaultPeriod
	}
	return o.Period
}

// Run captures the JVM period after period and pushes each period's slow
// and baseline profiles to Pyroscope until ctx ends. A period cut short by
// ctx is still merged and pushed when it has data; queued profiles are
// then pushed for up to FlushTimeout. Every capture stops its profiler
// (capture.Run guarantees it), so nothing is left running in the JVM.
// A period that fails is logged and the next one tried after a pause; Run
// returns an error for bad options, a JVM that exited, a process that is
// not a JVM or may not be attached to, and profiles left unpushed at the
// end.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	period := o.period()
	po := o.Pyroscope
	po.Labels = maps.Clone(po.Labels)
	if po.Labels == nil {
		po.Labels = map[string]string{}
	}
	defaultLabels(po.Labels, o.Capture.Latency)
	if po.Logf == nil {
		po.Logf = logf
	}
	if o.KeepBundles != "" {
		if err := os.MkdirAll(o.KeepBundles, 0o755); err != nil {
			return fmt.Errorf("creating the bundles directory: %w", err)
		}
	}
	pusher, err := pyroscope.NewPusher(po)
	if err != nil {
		return err
	}

	var runErr error
	for n := 1; ctx.Err() == nil; n++ {
		_, preempted, err := runPeriod(ctx, &o, period, n, pusher, logf)
		if o.OnStats != nil {
			o.OnStats(pusher.Stats())
		}
		if err == nil {
			continue
		}
		if errors.Is(syscall.Kill(o.Capture.PID, 0), syscall.ESRCH) {
			runErr = fmt.Errorf("the broker JVM (pid %d) exited: %w", o.Capture.PID, err)
			break
		}
		if permanent(err) {
			// Retrying cannot help: the pid or the permissions are wrong.
			runErr = err
			break
		}
		if ctx.Err() != nil {
			logf("period %d: %v (stopping)", n, err)
			break
		}
		if preempted {
			// Not a failure: the gate's owner took the JVM, and the next
			// period waits at the gate until it is done.
			logf("period %d: preempted before it had data: %v", n, err)
			continue
		}
		if o.KeepBundles == "" {
			logf("period %d: %v (next try in %v; the period's bundle was removed, --keep-bundles keeps them)", n, err, period)
		} else {
			logf("period %d: %v (next try in %v)", n, err, period)
		}
		select {
		case <-ctx.Done():
		case <-time.After(period):
		}
	}

	flush := o.FlushTimeout
	if flush == 0 {
		flush = 10 * time.Second
	}
	fctx, cancel := context.WithTimeout(context.Background(), flush)
	defer cancel()
	cerr := pusher.Close(fctx)
	s := pusher.Stats()
	logf("pyroscope: %d profiles pushed, %d retries, %d failed, %d refused, %d dropped", s.Pushed, s.Retries, s.Failed, s.Rejected, s.Dropped)
	return errors.Join(runErr, cerr)
}

// permanent reports errors a later period would meet again.
func permanent(err error) bool {
	for _, e := range []error{attach.ErrNotJVM, attach.ErrAttachDisabled, attach.ErrImpostor, attach.ErrPermission} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// runPeriod captures one period and queues its profiles; preempted says
// the gate's owner ended it early.
func runPeriod(ctx context.Context, o *Options, period time.Duration, n int, pusher *pyroscope.Pusher, logf func(string, ...any)) (rep *capture.Report, preempted bool, err error) {
	pctx, preempt := context.WithCancel(ctx)
	defer preempt()
	defer func() { preempted = pctx.Err() != nil && ctx.Err() == nil }()
	acquire := o.Acquire
	if o.AcquirePreemptible != nil {
		acquire = func(ctx context.Context) (func(), error) { return o.AcquirePreemptible(ctx, preempt) }
	}
	if acquire != nil {
		release, err := acquire(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("waiting for the capture gate: %w", err)
		}
		defer func() {
			if release != nil {
				release()
			}
		}()
	}
	dir, cleanup, err := periodDir(o.KeepBundles, n)
	if err != nil {
		return nil, false, err
	}
	defer cleanup()

	c := o.Capture
	c.Duration = period
	c.Out = dir
	rep, err = capture.Run(pctx, c)
	if rep != nil && o.OnReport != nil {
		// Deferred after cleanup, so it runs first: the bundle is there.
		defer o.OnReport(rep)
	}
	if rep == nil || rep.Summary == nil {
		if err == nil {
			err = errors.New("capture produced no merged profiles")
		}
		return rep, false, err
	}
	// The profiles are read into memory and queued, so the bundle can go
	// (and the gate be released) before they are pushed.
	profs, perr := periodProfiles(rep)
	pusher.Push(profs...)
	logf("period %d: %d produce requests, %d over the SLO; %d profiles queued for Pyroscope", n, rep.Requests, rep.OverSLO, len(profs))
	return rep, false, errors.Join(err, perr)
}

// periodDir returns a new bundle path for period n and what removes it.
func periodDir(keep string, n int) (string, func(), error) {
	if keep != "" {
		name := fmt.Sprintf("%s-%04d", time.Now().UTC().Format("20060102-150405"), n)
		return filepath.Join(keep, name), func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "lockscope-continuous-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a temporary bundle directory: %w", err)
	}
	return filepath.Join(tmp, "bundle"), func() { os.RemoveAll(tmp) }, nil
}

// periodProfiles splits a merged bundle's slow and baseline profiles into
// the profiles pushed, labelled slo_breach true and false.
func periodProfiles(rep *capture.Report) ([]pyroscope.Profile, error) {
	from := time.Unix(0, rep.Meta.Clock.Start.Realtime)
	until := time.Unix(0, rep.Meta.Clock.End.Realtime)
	var out []pyroscope.Profile
	var errs []error
	for _, part := range []struct {
		file   string
		breach string
	}{{bundle.SlowProfile, "true"}, {bundle.BaselineProfile, "false"}} {
		p, err := readProfile(filepath.Join(rep.Dir, part.file))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		profs, err := pyroscope.Split(p, from, until, map[string]string{pyroscope.LabelSLOBreach: part.breach})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, profs...)
	}
	return out, errors.Join(errs...)
}

func readProfile(path string) (*profile.Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading merged profile: %w", err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	return p, nil
}

// defaultLabels sets host and broker when the user did not.
func defaultLabels(labels map[string]string, latency string) {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	if _, ok := labels[pyroscope.LabelHost]; !ok {
		labels[pyroscope.LabelHost] = host
	}
	if _, ok := labels[pyroscope.LabelBroker]; !ok {
		broker := host
		if port, ok := strings.CutPrefix(latency, "kafka:"); ok {
			port, _, _ = strings.Cut(port, ",")
			broker = host + ":" + port
		}
		labels[pyroscope.LabelBroker] = broker
	}
}
