package offcpu

import (
	"fmt"
	"os"
	"time"
)

// Mode chooses when stacks are walked.
type Mode string

const (
	// Lazy walks the kernel stack of a thread when it is switched back in,
	// only for intervals of at least MinBlock. The default.
	Lazy Mode = "lazy"
	// Eager walks kernel and user stacks at switch-out (sampled) and the
	// waker's kernel stack at wakeup, like offcputime: far costlier.
	Eager Mode = "eager"
)

// Program chooses the attach flavour.
type Program string

const (
	// Auto uses tp_btf and falls back to raw_tp where the kernel refuses it.
	Auto Program = ""
	// TPBTF uses BTF-typed tracepoints with task storage.
	TPBTF Program = "tp_btf"
	// RawTP uses raw tracepoints with LRU hashes; kernel stacks are then
	// walked at switch-out, whatever the mode.
	RawTP Program = "raw_tp"
)

// MaxTargets is how many processes one collector can follow (MAX_TARGETS in
// bpf/offcpu.h).
const MaxTargets = 8

// Config says what to collect. The zero value plus PIDs is a valid lazy
// configuration; Validate fills defaults.
type Config struct {
	// PIDs are the host process ids (tgids) to follow, at most MaxTargets.
	PIDs []int
	// MinBlock drops intervals shorter than this. Zero means the default,
	// 1ms; KeepAll keeps every switch, which costs a stack walk per
	// switch of the targets.
	MinBlock time.Duration
	// Mode is Lazy (default) or Eager.
	Mode Mode
	// EagerSampleEvery walks stacks at one switch-out in this many in
	// eager mode (default 1: every one).
	EagerSampleEvery uint32
	// Program forces a program flavour; the default picks tp_btf.
	Program Program
	// RingBytes is the ring buffer size, a power of two of at least one
	// page (default 8 MiB).
	RingBytes int
	// WakeupBytes is how many bytes must wait in the ring buffer before
	// the kernel wakes the reader (default 64 KiB); below that the reader
	// polls every PollInterval.
	WakeupBytes int
	// PollInterval bounds how long an interval waits in the ring buffer
	// (default 100ms).
	PollInterval time.Duration
	// MaxThreads sizes the per-thread maps of the raw_tp flavour
	// (default 16384; tp_btf task storage needs no size).
	MaxThreads int
}

// KeepAll as Config.MinBlock keeps intervals of any length.
const KeepAll time.Duration = -1

// Defaults.
const (
	DefaultMinBlock     = time.Millisecond
	DefaultRingBytes    = 8 << 20
	DefaultWakeupBytes  = 64 << 10
	DefaultPollInterval = 100 * time.Millisecond
	DefaultMaxThreads   = 16384
)

// Validate checks the configuration and fills defaults. It touches neither
// the kernel nor the target processes.
func (c *Config) Validate() error {
	if err := validatePIDs(c.PIDs, "the JVM's", "collector"); err != nil {
		return err
	}
	switch {
	case c.MinBlock == 0:
		c.MinBlock = DefaultMinBlock
	case c.MinBlock < 0 && c.MinBlock != KeepAll:
		return fmt.Errorf("invalid min block %v: must be >= 0", c.MinBlock)
	}
	switch c.Mode {
	case "":
		c.Mode = Lazy
	case Lazy, Eager:
	default:
		return fmt.Errorf("invalid mode %q: use lazy or eager", c.Mode)
	}
	if c.EagerSampleEvery == 0 {
		c.EagerSampleEvery = 1
	}
	switch c.Program {
	case Auto, TPBTF, RawTP:
	default:
		return fmt.Errorf("invalid program %q: use tp_btf or raw_tp", c.Program)
	}
	if c.RingBytes == 0 {
		c.RingBytes = DefaultRingBytes
	}
	page := os.Getpagesize()
	if c.RingBytes < page || c.RingBytes&(c.RingBytes-1) != 0 {
		return fmt.Errorf("invalid ring buffer size %d: must be a power of two of at least %d", c.RingBytes, page)
	}
	if c.WakeupBytes == 0 {
		c.WakeupBytes = DefaultWakeupBytes
	}
	if c.WakeupBytes < 0 || c.WakeupBytes > c.RingBytes/2 {
		return fmt.Errorf("invalid wakeup threshold %d: must be between 1 and half the ring buffer (%d)", c.WakeupBytes, c.RingBytes/2)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("invalid poll interval %v: must be > 0", c.PollInterval)
	}
	if c.MaxThreads == 0 {
		c.MaxThreads = DefaultMaxThreads
	}
	if c.MaxThreads < 0 {
		return fmt.Errorf("invalid max threads %d: must be > 0", c.MaxThreads)
	}
	return nil
}

// validatePIDs checks a program's target processes: some, at most
// MaxTargets, positive, distinct, and not lockscope itself.
func validatePIDs(pids []int, whose, what string) error {
	if len(pids) == 0 {
		return fmt.Errorf("no target pid: give %s process id (--pid)", whose)
	}
	if len(pids) > MaxTargets {
		return fmt.Errorf("too many target pids (%d): at most %d per %s", len(pids), MaxTargets, what)
	}
	seen := map[int]bool{}
	for _, pid := range pids {
		if pid <= 0 {
			return fmt.Errorf("invalid pid %d: must be a positive host process id", pid)
		}
		if pid == os.Getpid() {
			return fmt.Errorf("invalid pid %d: lockscope cannot follow itself", pid)
		}
		if seen[pid] {
			return fmt.Errorf("pid %d given twice", pid)
		}
		seen[pid] = true
	}
	return nil
}
