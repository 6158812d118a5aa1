package profiler

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind names a profiler.
type Kind string

// The profilers lockscope drives; Auto prefers async-profiler and falls
// back to the JDK Flight Recorder when it is not installed.
const (
	Auto          Kind = "auto"
	AsyncProfiler Kind = "async-profiler"
	JFR           Kind = "jfr"
)

// String, Set and Type let a command line flag take a Kind (they are
// pflag.Value's methods), refusing unknown names when parsed.
func (k Kind) String() string { return string(k) }

// Set parses a profiler name.
func (k *Kind) Set(s string) error {
	switch Kind(s) {
	case Auto, AsyncProfiler, JFR:
		*k = Kind(s)
		return nil
	}
	return fmt.Errorf("profiler %q: want auto, async-profiler or jfr", s)
}

// Type names the flag's value in help texts.
func (k *Kind) Type() string { return "auto|async-profiler|jfr" }

// Options say which profiler to run and what it records.
type Options struct {
	Profiler Kind
	// AsyncProfilerHome is where async-profiler is installed (it holds
	// lib/libasyncProfiler.so); empty searches ASYNC_PROFILER_HOME, asprof on
	// PATH and the usual install directories.
	AsyncProfilerHome string

	// Duration is how long the capture is meant to run. The profiler stops
	// by itself Grace after it, should nobody stop it.
	Duration, Grace time.Duration

	// Wall is the wall-clock sampling interval (async-profiler; with JFR the
	// period of jdk.NativeMethodSample and, without CPU, of
	// jdk.ExecutionSample). Zero turns wall-clock sampling off.
	Wall time.Duration
	// CPU is the CPU sampling interval (async-profiler's cpu event, JFR's
	// jdk.ExecutionSample). Zero turns it off.
	CPU time.Duration
	// Lock is the lock contention threshold: async-profiler samples monitor
	// and j.u.c. lock waits every Lock of accumulated wait, JFR records
	// waits longer than Lock. Zero turns lock profiling off.
	Lock time.Duration
	// IO is the JFR threshold for file and socket reads and writes (fsyncs
	// are always recorded). async-profiler records no I/O events.
	IO time.Duration
	// Alloc is async-profiler's allocation sampling interval in bytes; zero
	// turns it off. JFR ignores it.
	Alloc int64
	// CStack is async-profiler's native stack walking mode (vm, fp, dwarf,
	// no); empty keeps its default.
	CStack string
	// ThreadFilter limits async-profiler's wall-clock sampling to these
	// thread ids, as the JVM numbers them (its pid namespace). JFR ignores it.
	ThreadFilter []int
	// Include and Exclude keep or drop async-profiler samples whose stack
	// has a frame matching the pattern (* wildcards). JFR ignores them.
	Include, Exclude []string
	// Perfmap asks the JVM for its JIT symbol map at the end of the capture.
	Perfmap bool
}

// DefaultOptions are lockscope's defaults: wall-clock every 10 ms and locks
// from 10 µs, as in the investigations lockscope automates.
func DefaultOptions() Options {
	return Options{
		Profiler: Auto,
		Duration: 60 * time.Second,
		Grace:    30 * time.Second,
		Wall:     10 * time.Millisecond,
		Lock:     10 * time.Microsecond,
		IO:       time.Millisecond,
		Perfmap:  true,
	}
}

// Validate reports options that cannot work, naming the option.
func (o Options) Validate() error {
	var errs []error
	switch o.Profiler {
	case Auto, AsyncProfiler, JFR:
	default:
		errs = append(errs, fmt.Errorf("profiler %q: want auto, async-profiler or jfr", o.Profiler))
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: must be positive", o.Duration))
	}
	if o.Grace < time.Second {
		errs = append(errs, fmt.Errorf("grace %v: must be at least 1s, the profilers' resolution for stopping by themselves", o.Grace))
	}
	if o.Wall < 0 || o.CPU < 0 || o.Lock < 0 || o.IO < 0 || o.Alloc < 0 {
		errs = append(errs, errors.New("wall, cpu, lock, io and alloc must not be negative"))
	}
	if o.Wall > 0 && o.Wall < 100*time.Microsecond || o.CPU > 0 && o.CPU < 100*time.Microsecond {
		errs = append(errs, fmt.Errorf("sampling intervals wall %v, cpu %v: below 100µs the profiler would disturb the broker more than it measures it", o.Wall, o.CPU))
	}
	if o.Wall == 0 && o.CPU == 0 && o.Lock == 0 && o.Alloc == 0 {
		errs = append(errs, errors.New("nothing to record: wall, cpu, lock and alloc are all off"))
	}
	switch o.CStack {
	case "", "vm", "vmx", "fp", "dwarf", "lbr", "no":
	default:
		errs = append(errs, fmt.Errorf("cstack %q: want vm, vmx, fp, dwarf, lbr or no", o.CStack))
	}
	for _, id := range o.ThreadFilter {
		if id <= 0 {
			errs = append(errs, fmt.Errorf("thread filter: thread id %d must be positive", id))
			break
		}
	}
	for _, p := range append(append([]string(nil), o.Include...), o.Exclude...) {
		// async-profiler splits its options at commas and reads no escapes.
		if p == "" || strings.ContainsAny(p, ",\x00") {
			errs = append(errs, fmt.Errorf("stack filter %q: must be non-empty without commas", p))
		}
	}
	return errors.Join(errs...)
}

// stopAfter is how long a started profiler may run at most, in whole
// seconds (both profilers count their limit in seconds), rounded up.
func (o Options) stopAfter() int {
	return int(math.Ceil((o.Duration + o.Grace).Seconds()))
}

// asprofStart returns the agent options that start async-profiler: one JFR
// recording with every enabled event, timestamps on CLOCK_MONOTONIC, and a
// timeout so that the profiler stops and finishes its file by itself.
func asprofStart(o Options, file, log string) string {
	opts := []string{"start"}
	switch {
	case o.CPU > 0:
		opts = append(opts, "event=cpu", "interval="+units(o.CPU))
		if o.Wall > 0 {
			opts = append(opts, "wall="+units(o.Wall))
		}
	case o.Wall > 0:
		opts = append(opts, "event=wall", "interval="+units(o.Wall))
	}
	if o.Lock > 0 {
		opts = append(opts, "lock="+units(o.Lock))
	}
	if o.Alloc > 0 {
		opts = append(opts, "alloc="+strconv.FormatInt(o.Alloc, 10))
	}
	if o.CStack != "" {
		opts = append(opts, "cstack="+o.CStack)
	}
	if len(o.ThreadFilter) > 0 {
		// Its thread filter takes any separator but a comma.
		ids := make([]string, len(o.ThreadFilter))
		for i, id := range o.ThreadFilter {
			ids[i] = strconv.Itoa(id)
		}
		opts = append(opts, "filter="+strings.Join(ids, ";"))
	}
	for _, p := range o.Include {
		opts = append(opts, "include="+p)
	}
	for _, p := range o.Exclude {
		opts = append(opts, "exclude="+p)
	}
	opts = append(opts, "clock=monotonic", "jfr", "file="+file,
		"timeout="+strconv.Itoa(o.stopAfter()), "log="+log)
	return strings.Join(opts, ",")
}

// asprofStop returns the agent options that stop async-profiler and make it
// finish the recording it started with file.
func asprofStop(file, log string) string {
	return "stop,jfr,file=" + file + ",log=" + log
}

// asprofStatus returns the agent options that write whether async-profiler
// runs, and for how long, to file.
func asprofStatus(file, log string) string {
	return "status,file=" + file + ",log=" + log
}

// jfrStart returns the JFR.start command of a lockscope recording: a disk
// recording that ends by itself after the duration and writes its file, also
// if the JVM exits first.
func jfrStart(o Options, name, settings, file string) string {
	return fmt.Sprintf("JFR.start name=%s settings=%s duration=%ds filename=%s disk=true dumponexit=true",
		name, settings, o.stopAfter(), file)
}

// jfrStop returns the JFR.stop command that ends the recording and writes it.
func jfrStop(name, file string) string {
	return fmt.Sprintf("JFR.stop name=%s filename=%s", name, file)
}

// units formats d with the largest unit async-profiler and JFR both read
// that keeps it exact.
func units(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
