//go:build linux

package offcpu

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
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
	"golang.org/x/sys/unix"
)

// FSTracer owns the filesystem tracer's programs, links, maps and ring
// buffer reader. Close releases everything; links are owned by file
// descriptors (never pinned), so a killed process leaves nothing attached.
//
// The programs (bpf/fs.bpf.c) are classic tracepoints, attached through
// perf events by the ids tracefs lists: syscalls/sys_enter_X and
// sys_exit_X of the followed calls, jbd2, ext4 and xfs events. Attaching
// any syscall tracepoint puts every system call of every process on the
// kernel's tracing path; the programs then return at once for processes
// that are not targets (scripts/bench-fs.sh measures what that costs).
type FSTracer struct {
	cfg FSConfig

	objs    fsObjects
	loaded  bool
	links   []link.Link
	missing []string
	reader  *ringbuf.Reader
	events  chan FSEvent
	journal chan JournalEvent
	done    chan struct{}
	readErr error

	asm       *journalAssembler
	malformed atomic.Uint64
	unpaired  atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	final     FSCounters
	finalOK   bool
	finalHist []FSHistogram
}

// TracefsDir is where classic tracepoints are found; StartFS mounts tracefs
// there when it is not mounted (and leaves it mounted, as every
// distribution does).
const TracefsDir = "/sys/kernel/tracing"

// The record kinds of fs_journal.go are bpf/fs.h's.
var _ = [1]struct{}{}[fsRecOp-int(fsFsRecFS_REC_OP)]
var _ = [1]struct{}{}[fsRecXFSFileFsync-int(fsFsRecFS_REC_XFS_FILE_FSYNC)]
var _ = [1]struct{}{}[fsRecExt4FCStop-int(fsFsRecFS_REC_EXT4FC_STOP)]
var _ = [1]struct{}{}[FSHistBuckets-len(fsFsHist{}.Buckets)]
var _ = [1]struct{}{}[int(FSReadv)-int(fsFsOpFS_OP_READV)]

// StartFS checks that it can run here, mounts tracefs if needed, loads and
// attaches the tracer for cfg.PIDs and starts streaming Events and Journal.
// Both channels must be drained. Tracing stops when ctx is done (both are
// then drained of what was submitted and closed) or at Close. On error
// nothing stays loaded or attached.
func StartFS(ctx context.Context, cfg FSConfig) (*FSTracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("filesystem tracing needs root (CAP_BPF, CAP_PERFMON, and mounting tracefs): run lockscope with sudo")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("kernel has no BTF (/sys/kernel/btf/vmlinux: %w): filesystem tracing needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", err)
	}
	for _, pid := range cfg.PIDs {
		if err := checkTarget(pid); err != nil {
			return nil, err
		}
	}
	if err := MountTracefs(); err != nil {
		return nil, err
	}
	hz, err := KernelHZ()
	if err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("removing memlock limit: %w", err)
	}
	t := &FSTracer{cfg: cfg, events: make(chan FSEvent, 256), journal: make(chan JournalEvent, 256),
		done: make(chan struct{}), asm: newJournalAssembler(hz)}
	if err := t.load(); err != nil {
		t.Close()
		return nil, err
	}
	if t.reader, err = ringbuf.NewReader(t.objs.Events); err != nil {
		t.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	go t.read(ctx)
	return t, nil
}

// MountTracefs mounts tracefs at TracefsDir unless its events are already
// there. Classic tracepoints are attached by the ids tracefs lists.
func MountTracefs() error {
	if _, err := os.Stat(TracefsDir + "/events"); err == nil {
		return nil
	}
	if err := unix.Mount("nodev", TracefsDir, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mounting tracefs at %s: %w: mount it with 'mount -t tracefs nodev %s'", TracefsDir, err, TracefsDir)
	}
	if _, err := os.Stat(TracefsDir + "/events"); err != nil {
		return fmt.Errorf("tracefs mounted at %s has no events: %w", TracefsDir, err)
	}
	return nil
}

// KernelHZ is the kernel's tick rate, which converts the jiffies of
// jbd2_run_stats: CONFIG_HZ of /proc/config.gz or /boot/config-RELEASE,
// else measured from /proc/timer_list.
func KernelHZ() (int, error) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + release} {
		if hz, err := configHZ(path); err == nil {
			return hz, nil
		}
	}
	hz, err := measureHZ()
	if err != nil {
		return 0, fmt.Errorf("finding the kernel's HZ (no kernel config, and /proc/timer_list: %w)", err)
	}
	return hz, nil
}

func configHZ(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return 0, err
		}
		r = gz
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			hz, err := strconv.Atoi(v)
			if err != nil || hz <= 0 {
				return 0, fmt.Errorf("malformed CONFIG_HZ %q in %s", v, path)
			}
			return hz, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CONFIG_HZ in %s", path)
}

// measureHZ reads jiffies and the monotonic time twice from
// /proc/timer_list and rounds the rate to the usual values.
func measureHZ() (int, error) {
	read := func() (now, jiffies uint64, err error) {
		b, err := os.ReadFile("/proc/timer_list")
		if err != nil {
			return 0, 0, err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			s := strings.TrimSpace(string(line))
			if v, ok := strings.CutPrefix(s, "now at "); ok && now == 0 {
				now, _ = strconv.ParseUint(strings.TrimSuffix(v, " nsecs"), 10, 64)
			}
			if v, ok := strings.CutPrefix(s, "jiffies: "); ok && jiffies == 0 {
				jiffies, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		if now == 0 || jiffies == 0 {
			return 0, 0, errors.New("no 'now at' or 'jiffies:' line")
		}
		return now, jiffies, nil
	}
	n0, j0, err := read()
	if err != nil {
		return 0, err
	}
	time.Sleep(200 * time.Millisecond)
	n1, j1, err := read()
	if err != nil {
		return 0, err
	}
	rate := float64(j1-j0) / (float64(n1-n0) / 1e9)
	best := 0
	for _, hz := range []int{100, 250, 300, 1000} {
		if best == 0 || abs(rate-float64(hz)) < abs(rate-float64(best)) {
			best = hz
		}
	}
	return best, nil
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// tracepoint is one attachment.
type tracepoint struct {
	group, name string
	prog        *ebpf.Program
	// optional tracepoints (a filesystem not built in or not loaded) are
	// listed in Missing instead of failing StartFS.
	optional bool
}

func (t *FSTracer) tracepoints() []tracepoint {
	p := &t.objs.fsPrograms
	sys := []struct {
		name  string
		enter *ebpf.Program
		read  bool
	}{
		{"write", p.FsEnterWrite, false}, {"pwrite64", p.FsEnterPwrite64, false}, {"writev", p.FsEnterWritev, false},
		{"pwritev", p.FsEnterPwritev, false}, {"pwritev2", p.FsEnterPwritev2, false}, {"fsync", p.FsEnterFsync, false},
		{"fdatasync", p.FsEnterFdatasync, false}, {"read", p.FsEnterRead, true}, {"pread64", p.FsEnterPread64, true},
		{"readv", p.FsEnterReadv, true},
	}
	// Journal first so that the first slow operations already have their
	// commits; exits before enters so that no operation is started without
	// its end being watched.
	tps := []tracepoint{
		{"jbd2", "jbd2_start_commit", p.FsJbd2StartCommit, true},
		{"jbd2", "jbd2_end_commit", p.FsJbd2EndCommit, true},
		{"jbd2", "jbd2_run_stats", p.FsJbd2RunStats, true},
		{"jbd2", "jbd2_handle_stats", p.FsJbd2HandleStats, true},
		{"ext4", "ext4_sync_file_enter", p.FsExt4SyncFileEnter, true},
		{"ext4", "ext4_sync_file_exit", p.FsExt4SyncFileExit, true},
		{"xfs", "xfs_log_force", p.FsXfsLogForce, true},
		{"xfs", "xfs_file_fsync", p.FsXfsFileFsync, true},
		{"ext4", "ext4_fc_commit_start", p.FsExt4FcCommitStart, true},
		{"ext4", "ext4_fc_commit_stop", p.FsExt4FcCommitStop, true},
	}
	for _, s := range sys {
		if s.read && !t.cfg.Reads {
			continue
		}
		tps = append(tps, tracepoint{"syscalls", "sys_exit_" + s.name, p.FsExit, false})
	}
	for _, s := range sys {
		if s.read && !t.cfg.Reads {
			continue
		}
		tps = append(tps, tracepoint{"syscalls", "sys_enter_" + s.name, s.enter, false})
	}
	return tps
}

func (t *FSTracer) load() error {
	spec, err := loadFs()
	if err != nil {
		return fmt.Errorf("loading BPF spec: %w", err)
	}
	var tgids [MaxTargets]uint32
	for i, pid := range t.cfg.PIDs {
		tgids[i] = uint32(pid)
	}
	vars := []struct {
		name  string
		value any
	}{
		{fsVarTargTgids, tgids},
		{fsVarN_targets, uint32(len(t.cfg.PIDs))},
		{fsVarMinNs, uint64(max(t.cfg.Min, 0).Nanoseconds())},
		{fsVarWakeupBytes, uint64(min(DefaultWakeupBytes, t.cfg.RingBytes/4))},
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
	spec.Maps[fsMapEvents].MaxEntries = uint32(t.cfg.RingBytes)
	spec.Maps[fsMapHists].MaxEntries = uint32(t.cfg.MaxFiles)
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return fmt.Errorf("loading filesystem tracer: %w", err)
	}
	t.loaded = true
	for _, tp := range t.tracepoints() {
		l, err := link.Tracepoint(tp.group, tp.name, tp.prog, nil)
		if err != nil {
			if tp.optional && errors.Is(err, os.ErrNotExist) {
				t.missing = append(t.missing, tp.group+"/"+tp.name)
				continue
			}
			return fmt.Errorf("attaching to tracepoint %s/%s: %w", tp.group, tp.name, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}

// Missing lists the journal tracepoints that do not exist on this kernel
// (e.g. xfs/xfs_log_force while the xfs module is not loaded): their
// activity is not seen.
func (t *FSTracer) Missing() []string { return t.missing }

// Events streams the operations at least FSConfig.Min long. It is closed
// when the context given to StartFS is done and everything submitted has
// been delivered, or at Close.
func (t *FSTracer) Events() <-chan FSEvent { return t.events }

// Journal streams journal activity, closed with Events.
func (t *FSTracer) Journal() <-chan JournalEvent { return t.journal }

// Err returns the error that ended reading early, if any. Valid once
// Events is closed.
func (t *FSTracer) Err() error {
	<-t.done
	return t.readErr
}

const (
	fsEventSize   = int(unsafe.Sizeof(fsFsEvent{}))
	fsJournalSize = int(unsafe.Sizeof(fsFsJournal{}))
)

func (t *FSTracer) read(ctx context.Context) {
	defer close(t.done)
	defer close(t.events)
	defer close(t.journal)
	stop := context.AfterFunc(ctx, func() { t.reader.Flush() })
	defer stop()

	emit := func(j JournalEvent) { t.journal <- j }
	defer func() {
		t.asm.flush(emit)
		t.unpaired.Store(t.asm.unpaired)
	}()
	var rec ringbuf.Record
	var ev fsFsEvent
	var jr fsFsJournal
	evBytes := unsafe.Slice((*byte)(unsafe.Pointer(&ev)), fsEventSize)
	jrBytes := unsafe.Slice((*byte)(unsafe.Pointer(&jr)), fsJournalSize)
	for {
		t.reader.SetDeadline(time.Now().Add(t.cfg.PollInterval))
		err := t.reader.ReadInto(&rec)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case errors.Is(err, ringbuf.ErrFlushed), errors.Is(err, ringbuf.ErrClosed):
			return
		default:
			t.readErr = fmt.Errorf("reading ring buffer: %w", err)
			return
		}
		raw := rec.RawSample
		if len(raw) < 4 {
			t.malformed.Add(1)
			continue
		}
		switch kind := *(*uint32)(unsafe.Pointer(&raw[0])); {
		case kind == fsRecOp && len(raw) >= fsEventSize:
			copy(evBytes, raw)
			t.events <- FSEvent{TID: ev.Tid, TGID: ev.Tgid, Op: FSOp(ev.Op), FD: ev.Fd, Dev: KernelDev(uint32(ev.Dev)),
				Ino: ev.Ino, Ret: ev.Ret, Start: ev.StartNs, End: ev.EndNs}
		case kind > fsRecOp && kind <= fsRecExt4FCStop && len(raw) >= fsJournalSize:
			copy(jrBytes, raw)
			t.asm.add(&journalRec{rec: jr.Rec, dev: jr.Dev, transaction: jr.Transaction, tid: jr.Tid, tgid: jr.Tgid,
				sync: jr.Sync, ts: jr.Ts, ino: jr.Ino, val: jr.Val, jiffies: jr.Jiffies, n: jr.N}, emit)
			t.unpaired.Store(t.asm.unpaired)
		default:
			t.malformed.Add(1)
		}
	}
}

// Histograms reads the in-kernel histograms: every operation of the
// targets so far, per process, file and operation. After Close it returns
// those read at Close.
func (t *FSTracer) Histograms() ([]FSHistogram, error) {
	if t.objs.Hists == nil {
		if t.finalOK {
			return t.finalHist, nil
		}
		return nil, errors.New("reading histograms: tracer closed before it started")
	}
	var out []FSHistogram
	var k fsFsHistKey
	var v fsFsHist
	it := t.objs.Hists.Iterate()
	for it.Next(&k, &v) {
		out = append(out, FSHistogram{TGID: k.Tgid, Dev: KernelDev(uint32(k.Dev)), Ino: k.Ino, Op: FSOp(k.Op),
			Count: v.Count, SumNs: v.SumNs, MaxNs: v.MaxNs, Bytes: v.Bytes, Buckets: v.Buckets})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading histograms: %w", err)
	}
	return out, nil
}

// Counters sums the kernel side's per-CPU counters. After Close it returns
// the totals read at Close.
func (t *FSTracer) Counters() (FSCounters, error) {
	if t.objs.Counters == nil {
		if t.finalOK {
			return t.final, nil
		}
		return FSCounters{}, errors.New("reading counters: tracer closed before it started")
	}
	sums, err := sumCounters(t.objs.Counters, int(fsFsCounterFS_COUNTER_MAX))
	if err != nil {
		return FSCounters{}, err
	}
	return FSCounters{
		Events:            sums[fsFsCounterFS_COUNTER_EVENTS],
		JournalEvents:     sums[fsFsCounterFS_COUNTER_JOURNAL],
		Drops:             sums[fsFsCounterFS_COUNTER_DROPS],
		HistogramOverflow: sums[fsFsCounterFS_COUNTER_HIST_OVERFLOW],
		InflightFailures:  sums[fsFsCounterFS_COUNTER_INFLIGHT_FAIL],
		NonFiles:          sums[fsFsCounterFS_COUNTER_NONFILE],
		Malformed:         t.malformed.Load(),
		Unpaired:          t.unpaired.Load(),
	}, nil
}

func (t *FSTracer) detach() error {
	err := detachAll(t.links)
	t.links = nil
	return err
}

// Close detaches the programs first (so nothing more is measured), keeps
// the final histograms and counters, stops the reader and frees the maps.
// Records still unread are discarded; cancel StartFS's context and drain
// both channels first to keep them. Safe to call more than once and after
// a failed StartFS.
func (t *FSTracer) Close() error {
	t.closeOnce.Do(func() {
		errs := []error{t.detach()}
		if t.objs.Counters != nil {
			if t.reader != nil {
				// Unpaired is final once the reader has stopped.
				t.reader.Close()
				go func() {
					for range t.events {
					}
				}()
				go func() {
					for range t.journal {
					}
				}()
				<-t.done
			}
			t.final, _ = t.Counters()
			var err error
			if t.finalHist, err = t.Histograms(); err != nil {
				errs = append(errs, err)
			}
			t.finalOK = true
		}
		if t.loaded {
			if err := t.objs.Close(); err != nil {
				errs = append(errs, fmt.Errorf("freeing BPF objects: %w", err))
			}
		}
		t.objs = fsObjects{}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
