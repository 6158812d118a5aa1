package offcpuprof

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/symbolize"
)

// Options are the flags of `lockscope offcpu`.
type Options struct {
	PIDs []int
	// Duration of the capture; 0 runs until the context is cancelled
	// (Ctrl-C).
	Duration time.Duration
	// MinBlock is the shortest interval kept; 0 keeps all.
	MinBlock time.Duration
	// Mode is "lazy" or "eager".
	Mode string
	// EagerSample walks stacks at one switch-out in this many in eager
	// mode (0 or 1: every one).
	EagerSample uint32
	// Format is "pprof" or "folded".
	Format string
	// Output is the file written; "-" is standard output. Empty means
	// offcpu.pb.gz for pprof and standard output for folded.
	Output string
}

// Validate checks the options and fills the default output.
func (o *Options) Validate() error {
	if o.Duration < 0 {
		return fmt.Errorf("invalid duration %v: must be >= 0 (0 runs until Ctrl-C)", o.Duration)
	}
	switch o.Format {
	case "pprof":
		if o.Output == "" {
			o.Output = "offcpu.pb.gz"
		}
	case "folded":
		if o.Output == "" {
			o.Output = "-"
		}
	default:
		return fmt.Errorf("invalid format %q: use pprof or folded", o.Format)
	}
	if o.MinBlock < 0 {
		return fmt.Errorf("invalid min block %v: must be >= 0", o.MinBlock)
	}
	cfg := o.Config()
	return cfg.Validate()
}

// Config is the collector configuration the options ask for.
func (o *Options) Config() offcpu.Config {
	cfg := offcpu.Config{PIDs: o.PIDs, MinBlock: o.MinBlock, Mode: offcpu.Mode(o.Mode), EagerSampleEvery: o.EagerSample}
	if cfg.Mode == "" {
		cfg.Mode = offcpu.Lazy
	}
	if o.MinBlock == 0 {
		cfg.MinBlock = offcpu.KeepAll
	}
	return cfg
}

// Run collects off-CPU intervals of the target processes for the duration
// (or until ctx is done) and writes the profile. Progress and the final
// counters go to stderr; standard output is for the profile when Output
// is "-".
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := offcpu.CheckEnvironment(); err != nil {
		return err
	}
	kernel, err := symbolize.LoadKernel()
	if err != nil {
		return fmt.Errorf("loading kernel symbols: %w", err)
	}
	b := NewBuilder(kernel)
	if o.Mode == string(offcpu.Eager) {
		for _, pid := range o.PIDs {
			// Mappings are read now, while the process lives.
			if p, err := symbolize.NewProcess(pid); err == nil {
				b.AddProcess(uint32(pid), p)
			}
		}
	}

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	cfg := o.Config()
	start := time.Now()
	c, err := offcpu.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	until := "until interrupted"
	if o.Duration > 0 {
		until = "for " + o.Duration.String()
	}
	minBlock := o.MinBlock.String()
	if o.MinBlock == 0 {
		minBlock = "0 (every switch)"
	}
	fmt.Fprintf(stderr, "lockscope: offcpu: attached (%s, %s, min block %s) to pid %s, collecting %s\n",
		c.Program(), cfg.Mode, minBlock, joinInts(o.PIDs), until)

	for iv := range c.Intervals() {
		b.Add(&iv)
	}
	elapsed := time.Since(start)
	readErr := c.Err()
	counters, cerr := c.Counters()
	if err := c.Close(); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	if cerr != nil {
		return cerr
	}

	if err := write(o, b, start, elapsed, counters, stdout); err != nil {
		return err
	}
	where := o.Output
	if where == "-" {
		where = "standard output"
	}
	fmt.Fprintf(stderr, "lockscope: offcpu: %d intervals, %v off-CPU, %d stacks written to %s\n",
		b.Intervals, time.Duration(b.Nanos).Round(time.Microsecond), len(b.stacks), where)
	fmt.Fprintf(stderr, "lockscope: offcpu: %v\n", counters)
	if lost := counters.Drops + counters.StateFailures; lost > 0 {
		fmt.Fprintf(stderr, "lockscope: offcpu: %d intervals lost: raise --min-block or the ring buffer size\n", lost)
	}
	return nil
}

func write(o Options, b *Builder, start time.Time, elapsed time.Duration, counters offcpu.Counters, stdout io.Writer) error {
	var w io.Writer = stdout
	var tmp *os.File
	if o.Output != "-" {
		// Written to a temporary file and renamed, so that a failed run
		// never leaves a truncated profile under the requested name.
		var err error
		tmp, err = os.CreateTemp(filepath.Dir(o.Output), ".lockscope-offcpu-*")
		if err != nil {
			return fmt.Errorf("creating output: %w", err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	var err error
	switch o.Format {
	case "folded":
		err = b.WriteFolded(w)
	default:
		comments := []string{
			"lockscope offcpu --pid " + joinInts(o.PIDs) + " --mode " + string(o.Config().Mode),
			counters.String(),
		}
		p, perr := b.Profile(start, elapsed, comments...)
		if perr != nil {
			return perr
		}
		err = p.Write(w)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.Format, err)
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.Output, err)
	}
	if err := os.Rename(tmp.Name(), o.Output); err != nil {
		return fmt.Errorf("writing %s: %w", o.Output, err)
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
