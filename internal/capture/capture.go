package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/symbolize"
)

// Options are one capture's settings, bound from `lockscope capture`.
type Options struct {
	PID      int
	Duration time.Duration
	// SLO, Pad and Kind turn requests into slow windows.
	SLO  time.Duration
	Pad  time.Duration
	Kind string
	// Latency is where request latencies come from: "kafka:PORT[,PORT]"
	// (sniffed live on Interface), "pcap:FILE", "requestlog:FILE",
	// "csv:FILE" or "jsonl:FILE" (generic start,duration CSV or JSONL) or
	// "none". A file source is read when the capture ends, but Run checks
	// before attaching that it exists and that latency can read its first
	// line (checkLatencySource).
	Latency   string
	Interface string
	// BrokerPorts are the broker's ports in a pcap source (default 9092).
	BrokerPorts []int
	Profiler    profiler.Options
	// MinBlock is the off-CPU collector's threshold; RequireOffCPU makes a
	// collector that cannot start an error instead of a warning.
	MinBlock      time.Duration
	RequireOffCPU bool
	// NoFS skips the filesystem lens; FSMin is its threshold for recording
	// an operation one by one (0: 1ms).
	NoFS  bool
	FSMin time.Duration
	// Out is the bundle directory to create.
	Out string
	// Labels go into the bundle's metadata (an alert's labels).
	Labels map[string]string
	// Version is lockscope's version, recorded in the bundle.
	Version string
	// Progress receives a line a second and the final summary; nil is quiet.
	Progress io.Writer
	// NoMerge leaves the merge to the caller (a cluster capture merges its
	// bundles together once all have ended): Run returns no summary.
	NoMerge bool
}

// Validate checks the options without touching the JVM or the kernel.
func (o *Options) Validate() error {
	var errs []error
	if o.PID <= 0 {
		errs = append(errs, errors.New("--pid: give the broker JVM's process id"))
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %v: must be positive", o.Duration))
	}
	if o.SLO <= 0 {
		errs = append(errs, fmt.Errorf("--slo %v: must be positive (e.g. 65ms)", o.SLO))
	}
	if o.Pad < 0 {
		errs = append(errs, fmt.Errorf("--pad %v: must not be negative", o.Pad))
	}
	if o.FSMin < 0 {
		errs = append(errs, fmt.Errorf("--fs-min %v: must not be negative", o.FSMin))
	}
	if _, err := latency.ParseMetric(o.Kind); err != nil {
		errs = append(errs, fmt.Errorf("--latency-kind: %w", err))
	}
	if _, _, err := parseLatency(o.Latency); err != nil {
		errs = append(errs, err)
	}
	if o.Out == "" {
		errs = append(errs, errors.New("-o: give the bundle directory to write"))
	}
	p := o.Profiler
	p.Duration = o.Duration
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parseLatency splits a latency source "kind:arg".
func parseLatency(s string) (kind, arg string, err error) {
	if s == "none" {
		return "none", "", nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if !ok || arg == "" {
		return "", "", fmt.Errorf("--latency %q: want kafka:PORT, pcap:FILE, requestlog:FILE, csv:FILE, jsonl:FILE or none", s)
	}
	switch kind {
	case "kafka":
		for _, p := range strings.Split(arg, ",") {
			if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
				return "", "", fmt.Errorf("--latency %q: %q is not a TCP port", s, p)
			}
		}
	case "pcap", "requestlog", "csv", "jsonl":
	default:
		return "", "", fmt.Errorf("--latency %q: unknown source %q (kafka, pcap, requestlog, csv, jsonl, none)", s, kind)
	}
	return kind, arg, nil
}

// Report is what a capture did.
type Report struct {
	Dir      string
	Meta     bundle.Meta
	Summary  *merge.Summary
	Requests int64
	OverSLO  int64
}

// counters are the live numbers progress shows.
type counters struct {
	requests, overSLO, intervals atomic.Int64
}

// Run captures the JVM o.PID for o.Duration (or until ctx ends, or the JVM
// exits) into a new bundle, then merges it. Whatever was collected is
// written even when a part fails or the capture is cut short; the profiler
// is always stopped (and has its own timeout should lockscope die). The
// bundle's provisional meta.json, written when the capture starts and
// updated once the profiler runs, lets lockscope merge recover a capture
// that was killed.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// A latency file is read when the capture ends; one that is missing or
	// that latency cannot read must fail now, before anything attaches,
	// not after the whole capture.
	latWarning, err := checkLatencySource(o.Latency)
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(o.PID, 0); err != nil {
		return nil, fmt.Errorf("process %d: %w (is the broker running? give its pid with --pid)", o.PID, err)
	}
	w, err := bundle.Create(o.Out)
	if err != nil {
		return nil, err
	}
	c := &run{o: o, w: w, progress: o.Progress}
	if c.progress == nil {
		c.progress = io.Discard
	}
	host, _ := os.Hostname()
	c.meta = bundle.Meta{Lockscope: o.Version, Created: time.Now().UTC(), Host: host, Kernel: kernelRelease(), BootID: bootID(),
		Target: bundle.Target{PID: o.PID, Command: cmdline(o.PID)}, Labels: o.Labels, Requested: o.Duration}
	metric, _ := latency.ParseMetric(o.Kind)
	c.meta.Latency = &bundle.Latency{Source: o.Latency, SLO: o.SLO, Kind: metric.String(), Pad: o.Pad}
	if kind, _, _ := parseLatency(o.Latency); kind == "pcap" {
		c.meta.Latency.BrokerPorts = o.brokerPorts()
	}
	// Until it runs, the profiler is what was asked for; its recording
	// is described once it has started.
	c.meta.Profiler = &bundle.Profiler{Name: string(o.Profiler.Profiler), WallInterval: o.Profiler.Wall}
	c.meta.Clock.Start = clock.Sample()
	c.meta.Start = c.meta.Clock.Start.Monotonic
	if latWarning != "" {
		c.warn("%s", latWarning)
	}
	if err := w.WriteProvisional(&c.meta); err != nil {
		return nil, err
	}

	err = c.capture(ctx)

	c.meta.Clock.End = clock.Sample()
	c.meta.End = c.meta.Clock.End.Monotonic
	if c.meta.Profiler != nil && c.meta.Profiler.File == "" {
		c.meta.Profiler = nil // no recording was collected
	}
	if ferr := w.Finish(&c.meta); ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	if err != nil {
		return nil, fmt.Errorf("capture (what was collected is in %s): %w", o.Out, err)
	}
	rep := &Report{Dir: o.Out, Meta: c.meta, Requests: c.n.requests.Load(), OverSLO: c.n.overSLO.Load()}
	if o.NoMerge {
		return rep, nil
	}
	rep.Summary, err = MergeBundle(o.Out, MergeOptions{})
	if err != nil {
		return rep, fmt.Errorf("merging the bundle (its raw inputs are kept; retry with lockscope merge %s): %w", o.Out, err)
	}
	return rep, nil
}

type run struct {
	o        Options
	w        *bundle.Writer
	meta     bundle.Meta
	n        counters
	progress io.Writer
	mu       sync.Mutex // guards meta.Warnings
}

// provisional rewrites the bundle's provisional meta.json with what the
// capture knows now.
func (c *run) provisional() {
	c.mu.Lock()
	err := c.w.WriteProvisional(&c.meta)
	c.mu.Unlock()
	if err != nil {
		c.warn("updating the provisional meta.json (should lockscope be killed, merge could not recover the recording): %v", err)
	}
}

func (c *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.meta.Warnings = append(c.meta.Warnings, msg)
	c.mu.Unlock()
	fmt.Fprintln(c.progress, "warning:", msg)
}

// capture runs the three sources until the duration ends, ctx ends or the
// JVM exits, then stops them in reverse order of starting.
func (c *run) capture(ctx context.Context) error {
	o := c.o
	vm, err := attach.Open(o.PID, attach.DefaultOptions())
	if err != nil {
		return err
	}
	if info, err := vm.Info(ctx); err == nil {
		c.meta.Target.JVM = info.VM
		c.meta.Target.Flags = map[string]string{}
		for _, name := range []string{"PreserveFramePointer", "DebugNonSafepoints", "DisableAttachMechanism", "UseContainerSupport"} {
			if f, ok := info.Flags[name]; ok {
				c.meta.Target.Flags[name] = f.Value
			}
		}
	} else {
		c.warn("reading the JVM's version and flags: %v", err)
	}

	// The collector and the latency source start first, so that the
	// profiler's whole recording is covered.
	offStop, err := c.startOffCPU(ctx)
	if err != nil {
		return err
	}
	fsStop, err := c.startFS(ctx)
	if err != nil {
		offStop()
		return err
	}
	latStop, err := c.startLatency(ctx)
	if err != nil {
		fsStop()
		offStop()
		return err
	}
	cpuStop := c.startCPU(ctx)

	popts := o.Profiler
	popts.Duration = o.Duration
	sess, err := profiler.Start(ctx, vm, popts)
	if err != nil {
		cpuStop()
		latStop()
		fsStop()
		offStop()
		return fmt.Errorf("starting the profiler: %w", err)
	}
	profiled := clock.Now()
	// Should lockscope be killed now, the profiler stops by itself at
	// its deadline and leaves its recording where the JVM wrote it: say
	// where, for lockscope merge to collect it.
	c.meta.Profiler = &bundle.Profiler{Name: string(sess.Profiler()), Options: sess.Command(), Clock: recordingClock(sess.Profiler()),
		WallInterval: popts.Wall, Started: profiled, Remote: sess.RemoteFile(), RemoteOnHost: sameMountNS(o.PID),
		Deadline: profiled + int64(popts.Duration+popts.Grace)}
	c.provisional()
	fmt.Fprintf(c.progress, "profiling pid %d with %s for %v\n", o.PID, sess.Reason(), o.Duration)

	ended := c.wait(ctx)
	c.meta.Ended = ended

	// Stop with a fresh context: an interrupted capture is still collected.
	stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	res, err := sess.Stop(stopCtx, c.w.Path(bundle.RecordingFile))
	if err != nil {
		sess.Close()
		if ended == "target exited" {
			c.warn("no JFR recording: the JVM exited before it could be collected (%v)", err)
		} else {
			errs = append(errs, fmt.Errorf("stopping the profiler: %w", err))
		}
	} else {
		c.meta.Profiler = &bundle.Profiler{Name: string(res.Profiler), Version: res.Version, Options: res.Command, File: bundle.RecordingFile,
			Clock: recordingClock(res.Profiler), WallInterval: popts.Wall, Started: profiled}
		for _, wmsg := range res.Warnings {
			c.warn("%s", wmsg)
		}
	}
	cpuStop()
	if err := latStop(); err != nil {
		errs = append(errs, err)
	}
	fsStop()
	offStop()
	return errors.Join(errs...)
}

// recordingClock is what the ticks of a profiler's recording count.
func recordingClock(k profiler.Kind) string {
	if k == profiler.AsyncProfiler {
		return "monotonic"
	}
	return "jvm"
}

// wait blocks until the capture should end and says why.
func (c *run) wait(ctx context.Context) string {
	deadline := time.Now().Add(c.o.Duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.progress, "interrupted: stopping and writing what was collected")
			return "interrupted"
		case now := <-tick.C:
			if err := syscall.Kill(c.o.PID, 0); errors.Is(err, syscall.ESRCH) {
				fmt.Fprintf(c.progress, "the JVM (pid %d) exited: writing what was collected\n", c.o.PID)
				return "target exited"
			}
			fmt.Fprintf(c.progress, "%5.0fs/%v  requests %d  over SLO %d  off-CPU intervals %d\n",
				now.Sub(start).Seconds(), c.o.Duration, c.n.requests.Load(), c.n.overSLO.Load(), c.n.intervals.Load())
			if !now.Before(deadline) {
				return "duration"
			}
		}
	}
}

// startOffCPU starts the off-CPU collector writing the bundle's off-CPU
// stream; the returned function stops it and records its counters.
func (c *run) startOffCPU(ctx context.Context) (func(), error) {
	fail := func(err error) (func(), error) {
		if c.o.RequireOffCPU {
			return nil, fmt.Errorf("off-CPU collector (required by --require-offcpu): %w", err)
		}
		c.warn("off-CPU intervals not collected, so the profiles have no kernel frames (--require-offcpu makes this an error): %v", err)
		return func() {}, nil
	}
	kernel, err := symbolize.LoadKernel()
	if err != nil {
		return fail(err)
	}
	octx, cancel := context.WithCancel(ctx)
	col, err := offcpu.Start(octx, offcpu.Config{PIDs: []int{c.o.PID}, MinBlock: c.o.MinBlock})
	if err != nil {
		cancel()
		return fail(err)
	}
	f, err := c.w.Create(bundle.OffCPUFile)
	if err != nil {
		cancel()
		col.Close()
		return fail(err)
	}
	ow := bundle.NewOffCPUWriter(f)
	c.meta.OffCPU = &bundle.OffCPU{Mode: string(offcpu.Lazy), MinBlock: c.o.MinBlock, File: bundle.OffCPUFile}
	done := make(chan error, 1)
	go func() {
		var werr error
		frames := make([]bundle.Frame, 0, 64)
		// Written out every second, so that a capture that is killed
		// loses at most the last second of intervals.
		flush := time.NewTicker(time.Second)
		defer flush.Stop()
		ivs := col.Intervals()
		for ivs != nil {
			var iv offcpu.Interval
			var ok bool
			select {
			case <-flush.C:
				if werr == nil {
					werr = ow.Flush()
				}
				continue
			case iv, ok = <-ivs:
				if !ok {
					ivs = nil
					continue
				}
			}
			if werr != nil {
				continue // keep draining so the collector is not blocked
			}
			frames = frames[:0]
			for _, name := range kernel.Stack(iv.Kernel) {
				frames = append(frames, bundle.Frame{Name: name, Kind: bundle.KindKernel})
			}
			werr = ow.Write(&bundle.Interval{TID: iv.TID, TGID: iv.TGID, Thread: iv.Thread, Start: iv.Start, End: iv.End, Wakeup: iv.Wakeup,
				State: iv.State, CPU: iv.CPU, WakerTID: iv.WakerTID, WakerThread: iv.WakerThread, Kernel: frames, KernelErr: iv.KernelErr})
			c.n.intervals.Add(1)
		}
		if werr == nil {
			werr = ow.Flush()
		}
		done <- errors.Join(werr, col.Err())
	}()
	stop := func() {
		cancel()
		err := <-done
		cnt, cerr := col.Counters()
		col.Close()
		f.Close()
		if err != nil {
			c.warn("off-CPU stream: %v", err)
		}
		meta := &bundle.OffCPU{Mode: string(offcpu.Lazy), MinBlock: c.o.MinBlock, File: bundle.OffCPUFile}
		if cerr == nil {
			meta.Counters = map[string]uint64{"events": cnt.Events, "drops": cnt.Drops, "kernel_stack_failures": cnt.KernelStackFailures,
				"state_failures": cnt.StateFailures, "malformed": cnt.Malformed}
			if cnt.Drops > 0 {
				c.warn("off-CPU collector dropped %d intervals (ring buffer full)", cnt.Drops)
			}
		}
		c.meta.OffCPU = meta
	}
	return stop, nil
}

// startLatency starts the latency source writing requests.jsonl.
func (c *run) startLatency(ctx context.Context) (func() error, error) {
	kind, arg, _ := parseLatency(c.o.Latency)
	metric, _ := latency.ParseMetric(c.o.Kind)
	if kind == "none" {
		return func() error { return nil }, nil
	}
	f, err := c.w.Create(bundle.RequestsFile)
	if err != nil {
		return nil, err
	}
	jw := latency.NewJSONLWriter(f)
	var (
		mu   sync.Mutex // guards jw, fw and werr: the live source flushes every second
		werr error
		// fw writes the followers' fetches (fetches.jsonl), created with
		// the first one: only a leader's port has them.
		ff *os.File
		fw *latency.JSONLWriter
	)
	emit := func(r *latency.Request) {
		if r.Replica != nil {
			mu.Lock()
			if werr == nil && fw == nil {
				if ff, werr = c.w.Create(bundle.FetchesFile); werr == nil {
					fw = latency.NewJSONLWriter(ff)
				}
			}
			if werr == nil {
				werr = fw.Write(r)
			}
			mu.Unlock()
			return
		}
		if r.APIKey != latency.APIProduce {
			return
		}
		c.n.requests.Add(1)
		if r.Measured() && r.Latency(metric) > c.o.SLO {
			c.n.overSLO.Add(1)
		}
		mu.Lock()
		if werr == nil {
			werr = jw.Write(r)
		}
		mu.Unlock()
	}
	finish := func(extra error) error {
		err := errors.Join(extra, werr, jw.Flush(), f.Close())
		if fw != nil {
			err = errors.Join(err, fw.Flush(), ff.Close())
		}
		c.meta.Latency.Requests = c.n.requests.Load()
		c.meta.Latency.OverSLO = c.n.overSLO.Load()
		if err != nil {
			return fmt.Errorf("latency source %s: %w", c.o.Latency, bundle.Hint(err))
		}
		return nil
	}
	switch kind {
	case "kafka":
		var ports []uint16
		for _, p := range strings.Split(arg, ",") {
			n, _ := strconv.Atoi(p)
			ports = append(ports, uint16(n))
		}
		s, err := sniff.New(sniff.Options{Ports: ports}, emit)
		if err != nil {
			f.Close()
			return nil, err
		}
		live, err := sniff.OpenLive(sniff.LiveOptions{Interface: c.o.Interface, Ports: ports})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sniffing the Kafka port (use --latency none or another source if it cannot be sniffed): %w", err)
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- live.Run(lctx, s, 0, nil) }()
		// Written out every second, so that a capture that is killed
		// loses at most the last second of requests.
		flushed := make(chan struct{})
		go func() {
			defer close(flushed)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-lctx.Done():
					return
				case <-t.C:
					mu.Lock()
					if werr == nil {
						werr = jw.Flush()
					}
					if werr == nil && fw != nil {
						werr = fw.Flush()
					}
					mu.Unlock()
				}
			}
		}()
		return func() error {
			cancel()
			err := <-done
			<-flushed
			s.Flush(time.Now().UnixNano())
			live.Close()
			c.meta.Latency.Counters = map[string]uint64{"packets": s.Stats.Packets.Load(), "kernel_drops": s.Stats.KernelDrops.Load(),
				"holes": s.Stats.Holes.Load(), "malformed": s.Stats.Malformed.Load(), "truncated": s.Stats.Truncated.Load()}
			if d := s.Stats.KernelDrops.Load(); d > 0 {
				c.warn("the packet capture lost %d packets in the kernel: some requests are missing", d)
			}
			return finish(err)
		}, nil
	default:
		// Files are read after the capture: they may still be written to.
		return func() error {
			if st, err := os.Stat(arg); err == nil && st.Size() == 0 {
				c.warn("latency source %s stayed empty during the capture: no requests, so no slow windows (everything is baseline)", c.o.Latency)
				return finish(nil)
			}
			return finish(readLatencyFile(kind, arg, c.meta.Latency.BrokerPorts, emit))
		}, nil
	}
}

// brokerPorts are the broker's ports in a pcap source.
func (o *Options) brokerPorts() []int {
	if len(o.BrokerPorts) == 0 {
		return []int{9092}
	}
	return o.BrokerPorts
}

// sameMountNS reports whether process pid shares lockscope's mount
// namespace, so that paths in its file system are host paths.
func sameMountNS(pid int) bool {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false
	}
	other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	return err == nil && self == other
}

// bootID identifies the running boot of the host.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return runtime.GOOS
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
