package doctor

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
)

// Options are the flags of lockscope doctor.
type Options struct {
	// PID is the broker JVM to check. Zero looks for a single running
	// kafka.Kafka JVM; NoJVM skips the JVM checks.
	PID   int
	NoJVM bool
	// LogDirs are checked in addition to the broker's own (in lockscope's
	// mount namespace), e.g. before a broker runs there.
	LogDirs []string
	// Experiment is the JSON written by `lockscope compare --format json`
	// (a file, or a directory holding compare.json) of a filesystem
	// experiment, whose rows are shown beside the advice.
	Experiment string
	// AsyncProfilerHome is where async-profiler is installed; empty looks
	// where lockscope capture looks.
	AsyncProfilerHome string
	// Attach tunes attaching to the JVM.
	Attach attach.Options
	// Timeout bounds the whole run.
	Timeout time.Duration
	// SkipBPFLoad does not load the off-CPU program to see whether it
	// loads (the cheaper checks of BTF and privileges still run).
	SkipBPFLoad bool
}

// DefaultOptions are the options lockscope doctor starts from.
func DefaultOptions() Options {
	return Options{Attach: attach.DefaultOptions(), Timeout: time.Minute}
}

// Validate reports options that cannot work, touching neither the kernel
// nor any process.
func (o *Options) Validate() error {
	if o.PID < 0 {
		return fmt.Errorf("doctor: pid %d: must be positive", o.PID)
	}
	if o.PID != 0 && o.NoJVM {
		return fmt.Errorf("doctor: --pid %d and --no-jvm contradict each other", o.PID)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("doctor: timeout %v: must be positive", o.Timeout)
	}
	if err := o.Attach.Validate(); err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	for i, d := range o.LogDirs {
		d = strings.TrimSpace(d)
		if d == "" {
			return fmt.Errorf("doctor: empty log dir in --log-dirs")
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("doctor: log dir %s: %w", d, err)
		}
		o.LogDirs[i] = abs
	}
	return nil
}
