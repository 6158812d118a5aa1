//go:build linux

package offcpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// Collector owns the loaded programs, their links and the ring buffer
// reader of one collection. Everything it holds is released by Close; the
// links are owned by file descriptors (never pinned), so a killed process
// leaves nothing attached either.
type Collector struct {
	cfg     Config
	program Program

	objs    objects
	links   []link.Link
	reader  *ringbuf.Reader
	out     chan Interval
	done    chan struct{}
	readErr error

	malformed atomic.Uint64
	names     *ThreadNames

	closeOnce sync.Once
	closeErr  error
	final     Counters
	finalOK   bool
}

// objects are the kernel objects of one program flavour. LoadAndAssign
// creates only what these fields name and the maps their programs use, so
// the other flavour's maps are never allocated.
type objects struct {
	Switch   *ebpf.Program
	Waking   *ebpf.Program
	Events   *ebpf.Map
	Counters *ebpf.Map
}

type btfObjects struct {
	Switch   *ebpf.Program `ebpf:"offcpu_switch_btf"`
	Waking   *ebpf.Program `ebpf:"offcpu_waking_btf"`
	Events   *ebpf.Map     `ebpf:"events"`
	Counters *ebpf.Map     `ebpf:"counters"`
}

type rawObjects struct {
	Switch   *ebpf.Program `ebpf:"offcpu_switch_raw"`
	Waking   *ebpf.Program `ebpf:"offcpu_waking_raw"`
	Events   *ebpf.Map     `ebpf:"events"`
	Counters *ebpf.Map     `ebpf:"counters"`
}

func (o *objects) close() {
	if o.Switch != nil {
		o.Switch.Close()
	}
	if o.Waking != nil {
		o.Waking.Close()
	}
	if o.Events != nil {
		o.Events.Close()
	}
	if o.Counters != nil {
		o.Counters.Close()
	}
	*o = objects{}
}

// Start checks that it can run here, loads and attaches the program for
// cfg.PIDs and starts streaming intervals to Intervals. Collection stops
// when ctx is done (Intervals is then drained and closed) or at Close. On
// error nothing stays loaded or attached.
func Start(ctx context.Context, cfg Config) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CheckEnvironment(); err != nil {
		return nil, err
	}
	for _, pid := range cfg.PIDs {
		if err := checkTarget(pid); err != nil {
			return nil, err
		}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("removing memlock limit: %w", err)
	}

	c := &Collector{cfg: cfg, out: make(chan Interval, 256), done: make(chan struct{}), names: NewThreadNames()}
	// Threads that end before their last interval is read keep a name.
	for _, pid := range cfg.PIDs {
		c.names.Prime(uint32(pid))
	}
	var err error
	switch cfg.Program {
	case TPBTF, RawTP:
		err = c.load(cfg.Program)
	default:
		if err = c.load(TPBTF); err != nil {
			btfErr := err
			if err = c.load(RawTP); err != nil {
				err = fmt.Errorf("%w (tp_btf also failed: %v)", err, btfErr)
			}
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if c.reader, err = ringbuf.NewReader(c.objs.Events); err != nil {
		c.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	go c.read(ctx)
	return c, nil
}

// CheckEnvironment says, with the fix, why this process cannot load the
// collector: not root (CAP_BPF, CAP_PERFMON) or a kernel without BTF.
func CheckEnvironment() error {
	if os.Geteuid() != 0 {
		return errors.New("off-CPU collection needs root (CAP_BPF and CAP_PERFMON): run lockscope with sudo")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("kernel has no BTF (/sys/kernel/btf/vmlinux: %w): use a kernel built with CONFIG_DEBUG_INFO_BTF=y", err)
	}
	return nil
}

func checkTarget(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no process with pid %d: check the JVM's pid (jcmd -l lists them)", pid)
	}
	if err != nil {
		return fmt.Errorf("reading process %d: %w", pid, err)
	}
	// Field 9 of stat is the task flags; the command name before it may
	// hold spaces and parentheses, so count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return fmt.Errorf("reading process %d: malformed /proc/%d/stat", pid, pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 7 {
		return fmt.Errorf("reading process %d: malformed /proc/%d/stat", pid, pid)
	}
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		return fmt.Errorf("reading process %d flags: %w", pid, err)
	}
	if flags&pfKthread != 0 {
		return fmt.Errorf("pid %d is a kernel thread: give the pid of a user process (the JVM)", pid)
	}
	return nil
}

// pfKthread is PF_KTHREAD of include/linux/sched.h.
const pfKthread = 0x00200000

func (c *Collector) load(p Program) error {
	spec, err := loadOffcpu()
	if err != nil {
		return fmt.Errorf("loading BPF spec: %w", err)
	}
	var tgids [MaxTargets]uint32
	for i, pid := range c.cfg.PIDs {
		tgids[i] = uint32(pid)
	}
	var eager uint8
	if c.cfg.Mode == Eager {
		eager = 1
	}
	vars := []struct {
		name  string
		value any
	}{
		{offcpuVarTargTgids, tgids},
		{offcpuVarN_targets, uint32(len(c.cfg.PIDs))},
		{offcpuVarSelfTgid, uint32(os.Getpid())},
		{offcpuVarMinBlockNs, uint64(max(c.cfg.MinBlock, 0).Nanoseconds())},
		{offcpuVarEager, eager},
		{offcpuVarEagerSampleEvery, c.cfg.EagerSampleEvery},
		{offcpuVarWakeupBytes, uint64(c.cfg.WakeupBytes)},
	}
	for _, v := range vars {
		vs, ok := spec.Variables[v.name]
		if !ok {
			return fmt.Errorf("setting %s: variable missing from BPF object", v.name)
		}
		if err := vs.Set(v.value); err != nil {
			return fmt.Errorf("setting %s: %w", v.name, err)
		}
	}
	spec.Maps[offcpuMapEvents].MaxEntries = uint32(c.cfg.RingBytes)
	spec.Maps[offcpuMapTstateLru].MaxEntries = uint32(c.cfg.MaxThreads)
	// Stacks are kept between switch-out and switch-in only for threads
	// that are off the CPU; the LRU evicts the oldest.
	spec.Maps[offcpuMapTstacksLru].MaxEntries = uint32(min(c.cfg.MaxThreads, 4096))

	var opts ebpf.CollectionOptions
	if p == TPBTF {
		var o btfObjects
		if err := spec.LoadAndAssign(&o, &opts); err != nil {
			return fmt.Errorf("loading tp_btf programs: %w", err)
		}
		c.objs = objects(o)
	} else {
		var o rawObjects
		if err := spec.LoadAndAssign(&o, &opts); err != nil {
			return fmt.Errorf("loading raw_tp programs: %w", err)
		}
		c.objs = objects(o)
	}
	c.program = p
	// Attach sched_waking first so that the first intervals already get
	// their waker.
	for _, a := range []struct {
		tp   string
		prog *ebpf.Program
	}{{"sched_waking", c.objs.Waking}, {"sched_switch", c.objs.Switch}} {
		var l link.Link
		var err error
		if p == TPBTF {
			l, err = link.AttachTracing(link.TracingOptions{Program: a.prog, AttachType: ebpf.AttachTraceRawTp})
		} else {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.tp, Program: a.prog})
		}
		if err != nil {
			c.detach()
			c.objs.close()
			return fmt.Errorf("attaching %s to %s: %w", p, a.tp, err)
		}
		c.links = append(c.links, l)
	}
	return nil
}

// Program returns the flavour that was loaded.
func (c *Collector) Program() Program { return c.program }

// Intervals streams the collected intervals. It is closed when the context
// given to Start is done and everything already in the ring buffer has been
// delivered, or at Close. Err then says whether reading failed.
func (c *Collector) Intervals() <-chan Interval { return c.out }

// Err returns the error that ended reading early, if any. Valid once
// Intervals is closed.
func (c *Collector) Err() error {
	<-c.done
	return c.readErr
}

const (
	// Kernel-only records carry the header and only the frames walked.
	eventHeaderSize = int(unsafe.Offsetof(offcpuEvent{}.Kstack))
	eventEagerSize  = int(unsafe.Sizeof(offcpuEventEager{}))
)

func (c *Collector) read(ctx context.Context) {
	defer close(c.done)
	defer close(c.out)

	stop := context.AfterFunc(ctx, func() {
		// Flush wakes the reader, which then drains what is left and
		// returns ErrFlushed.
		c.reader.Flush()
	})
	defer stop()

	names := c.names
	// One record and one decoded event are reused for the whole run; an
	// Interval copies what it keeps.
	var rec ringbuf.Record
	var ev offcpuEventEager
	evBytes := unsafe.Slice((*byte)(unsafe.Pointer(&ev)), eventEagerSize)
	for {
		c.reader.SetDeadline(time.Now().Add(c.cfg.PollInterval))
		err := c.reader.ReadInto(&rec)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Below the wakeup threshold: everything waiting was
			// read, poll again.
			continue
		case errors.Is(err, ringbuf.ErrFlushed), errors.Is(err, ringbuf.ErrClosed):
			return
		default:
			c.readErr = fmt.Errorf("reading ring buffer: %w", err)
			return
		}
		raw := rec.RawSample
		if len(raw) < eventHeaderSize {
			c.malformed.Add(1)
			continue
		}
		// The generated type has the C layout (structs.HostLayout), so a
		// byte copy decodes it without reflection. Only the part the
		// record carries is copied; the rest is not read.
		n := copy(evBytes, raw)
		iv := Interval{
			TID:               ev.Ev.Tid,
			TGID:              ev.Ev.Tgid,
			Start:             ev.Ev.StartNs,
			End:               ev.Ev.EndNs,
			Wakeup:            ev.Ev.WakeNs,
			State:             State(ev.Ev.State),
			CPU:               ev.Ev.Cpu,
			WakerTID:          ev.Ev.WakerTid,
			KernelAtSwitchOut: ev.Ev.Flags&uint8(offcpuEventFlagEV_KSTACK_OUT) != 0,
		}
		if l := ev.Ev.KstackLen; l < 0 {
			iv.KernelErr = l
		} else {
			// Never read frames the record did not carry.
			iv.Kernel = stack(ev.Ev.Kstack[:min(len(ev.Ev.Kstack), (n-eventHeaderSize)/8)], l)
		}
		if n >= eventEagerSize {
			if ev.Ev.Flags&uint8(offcpuEventFlagEV_USTACK) != 0 {
				iv.User = stack(ev.Ustack[:], ev.Ev.UstackLen)
			}
			if ev.Ev.Flags&uint8(offcpuEventFlagEV_WSTACK) != 0 {
				iv.Waker = stack(ev.Wstack[:], ev.Ev.WstackLen)
			}
		}
		iv.Thread = names.Get(iv.TGID, iv.TID)
		if iv.WakerTID != 0 {
			iv.WakerThread = names.Get(0, iv.WakerTID)
		}
		// A slow consumer blocks the reader; the kernel side then counts
		// what no longer fits in the ring buffer as drops.
		c.out <- iv
	}
}

// stack copies the first n frames out of the reused event.
func stack(frames []uint64, n int32) []uint64 {
	if n <= 0 {
		return nil
	}
	if int(n) > len(frames) {
		n = int32(len(frames))
	}
	return append([]uint64(nil), frames[:n]...)
}

// Counters sums the kernel side's per-CPU counters. After Close it returns
// the totals read at Close.
func (c *Collector) Counters() (Counters, error) {
	if c.objs.Counters == nil {
		if c.finalOK {
			return c.final, nil
		}
		return Counters{}, errors.New("reading counters: collector closed before it started")
	}
	sums, err := sumCounters(c.objs.Counters, int(offcpuCounterCOUNTER_MAX))
	if err != nil {
		return Counters{}, err
	}
	return Counters{
		Events:              sums[offcpuCounterCOUNTER_EVENTS],
		Drops:               sums[offcpuCounterCOUNTER_DROPS],
		KernelStackFailures: sums[offcpuCounterCOUNTER_KSTACK_FAIL],
		UserStackFailures:   sums[offcpuCounterCOUNTER_USTACK_FAIL],
		WakerStackFailures:  sums[offcpuCounterCOUNTER_WSTACK_FAIL],
		StateFailures:       sums[offcpuCounterCOUNTER_STATE_FAIL],
		Malformed:           c.malformed.Load(),
	}, nil
}

func (c *Collector) detach() error {
	err := detachAll(c.links)
	c.links = nil
	return err
}

// Close detaches the programs first (so nothing more is measured), stops
// the reader and frees the maps. Intervals still unread in the ring buffer
// are discarded; cancel Start's context and drain Intervals first to keep
// them. Safe to call more than once and after a failed Start.
func (c *Collector) Close() error {
	c.closeOnce.Do(func() {
		errs := []error{c.detach()}
		if c.objs.Counters != nil {
			c.final, _ = c.Counters()
			c.finalOK = true
		}
		if c.reader != nil {
			if err := c.reader.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing ring buffer reader: %w", err))
			}
			// The reading goroutine ends on ErrClosed; wait so that
			// no one writes to freed memory.
			go func() {
				for range c.out {
				}
			}()
			<-c.done
		}
		c.objs.close()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
