package fslens

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// Options configure `lockscope fs`.
type Options struct {
	// PID is the broker's process id.
	PID int
	// Duration stops tracing after this long; 0 traces until the context
	// is done (Ctrl-C).
	Duration time.Duration
	// Min is the latency from which operations are printed one by one; 0
	// prints every operation. All are counted in the histograms.
	Min time.Duration
	// Reads also traces read, pread64 and readv.
	Reads bool
	// MaxFiles bounds the (file, operation) histograms kept in the kernel.
	MaxFiles int
	// Hold is how long a slow operation waits before it is printed, so that
	// the journal commit it overlapped has been read too (default 250ms).
	Hold time.Duration
}

// Validate checks the options and fills defaults.
func (o *Options) Validate() error {
	if o.PID <= 0 {
		return errors.New("no target pid: give the broker's process id with --pid (jcmd -l lists JVMs)")
	}
	if o.Duration < 0 {
		return fmt.Errorf("invalid duration %v: must be >= 0 (0 traces until Ctrl-C)", o.Duration)
	}
	if o.Min < 0 {
		return fmt.Errorf("invalid --min %v: must be >= 0 (0 prints every operation)", o.Min)
	}
	if o.MaxFiles < 0 {
		return fmt.Errorf("invalid --max-files %d: must be > 0", o.MaxFiles)
	}
	if o.Hold == 0 {
		o.Hold = 250 * time.Millisecond
	}
	cfg := o.TracerConfig()
	return cfg.Validate()
}

// TracerConfig is the filesystem tracer's configuration for these options.
func (o *Options) TracerConfig() offcpu.FSConfig {
	cfg := offcpu.FSConfig{PIDs: []int{o.PID}, Min: o.Min, Reads: o.Reads, MaxFiles: o.MaxFiles}
	if o.Min == 0 {
		cfg.Min = offcpu.KeepAll
	}
	return cfg
}

// Clock converts CLOCK_MONOTONIC times to wall-clock time, from one pair
// of readings taken when it was made.
type Clock struct {
	mono uint64
	wall time.Time
}

// NewClock reads both clocks.
func NewClock() Clock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return Clock{mono: uint64(ts.Nano()), wall: time.Now()}
}

// Wall is the wall-clock time of a CLOCK_MONOTONIC time.
func (c Clock) Wall(mono uint64) time.Time {
	return c.wall.Add(time.Duration(int64(mono) - int64(c.mono)))
}

type heldOp struct {
	op  bundle.FSOp
	due time.Time
}

// Run traces the file operations of opts.PID and writes them to w: slow
// operations as they happen, then a summary when opts.Duration is over, the
// process exits, or ctx is done. The tracer is closed before Run returns.
func Run(ctx context.Context, opts Options, w io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	mounts, err := Mounts(opts.PID)
	if err != nil {
		return err
	}
	clock := NewClock()
	started := time.Now()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Duration > 0 {
		var stop context.CancelFunc
		tctx, stop = context.WithTimeout(tctx, opts.Duration)
		defer stop()
	}
	tr, err := offcpu.StartFS(tctx, opts.TracerConfig())
	if err != nil {
		return err
	}
	defer tr.Close()

	res := NewResolver()
	res.ScanFDs(opts.PID)
	names := offcpu.NewThreadNames()
	names.Prime(uint32(opts.PID))
	idx := NewJournalIndex()
	journals := NewJournals()
	slow := SlowCounts{}
	printer := &Printer{W: w, Wall: clock.Wall}
	unresolved := 0
	var held []heldOp
	var werr error
	flush := func(all bool) {
		now := time.Now()
		n := 0
		for ; n < len(held) && (all || now.After(held[n].due)); n++ {
			op := &held[n].op
			o := idx.Overlap(op)
			journals.AddOp(op, o)
			if werr == nil {
				werr = printer.Op(op, o)
			}
		}
		held = append(held[:0], held[n:]...)
	}
	fmt.Fprintf(w, "Tracing file operations of pid %d", opts.PID)
	if opts.Duration > 0 {
		fmt.Fprintf(w, " for %v", opts.Duration)
	}
	if opts.Min == 0 {
		fmt.Fprintln(w, " (Ctrl-C to stop); printing every operation")
	} else {
		fmt.Fprintf(w, " (Ctrl-C to stop); printing those of at least %s\n", Dur(opts.Min))
	}
	tick := time.NewTicker(opts.Hold / 2)
	defer tick.Stop()
	// Files are resolved while the target has them open: the histograms'
	// new files once a second (a miss rescans /proc/PID/fd at most that
	// often), not only at the end, when short-lived files are gone.
	resolveTick := time.NewTicker(time.Second)
	defer resolveTick.Stop()
	exited := false
	evs, js := tr.Events(), tr.Journal()
	for evs != nil || js != nil {
		select {
		case ev, ok := <-evs:
			if !ok {
				evs = nil
				continue
			}
			f := res.File(int(ev.TGID), ev.Dev, ev.Ino)
			if f.Path == "" {
				unresolved++
			}
			op := OpRecord(&ev, f, names.Get(ev.TGID, ev.TID))
			slow.Add(&op)
			held = append(held, heldOp{op: op, due: time.Now().Add(opts.Hold)})
		case j, ok := <-js:
			if !ok {
				js = nil
				continue
			}
			rec := JournalRecord(&j)
			idx.Add(&rec)
			journals.Add(&rec)
			if j.Kind == offcpu.JournalJBD2Commit && j.Sync {
				journals.AddSync(rec.Dev)
			}
		case <-resolveTick.C:
			if raw, err := tr.Histograms(); err == nil {
				for i := range raw {
					res.File(int(raw[i].TGID), raw[i].Dev, raw[i].Ino)
				}
			}
		case <-tick.C:
			flush(false)
			if _, err := os.Stat("/proc/" + strconv.Itoa(opts.PID)); err != nil && !exited {
				exited = true
				cancel()
			}
		}
	}
	flush(true)
	if err := tr.Err(); err != nil {
		return err
	}
	raw, herr := tr.Histograms()
	counters, cerr := tr.Counters()
	if err := tr.Close(); err != nil {
		return fmt.Errorf("closing filesystem tracer: %w", err)
	}
	if herr != nil {
		return herr
	}
	if cerr != nil {
		return cerr
	}
	if exited {
		fmt.Fprintf(w, "\npid %d exited\n", opts.PID)
	}
	hists := make([]Histogram, 0, len(raw))
	used := map[string]bool{}
	for i := range raw {
		f := res.File(int(raw[i].TGID), raw[i].Dev, raw[i].Ino)
		hists = append(hists, FromTracer(&raw[i], f))
		used[f.Dev] = true
	}
	var devs []DeviceJournal
	for _, d := range journals.List(ByDev(mounts)) {
		// Only the devices the target did file I/O on.
		if used[d.Dev] || d.SlowOps > 0 {
			devs = append(devs, d)
		}
	}
	sum := &Summary{PID: opts.PID, Duration: time.Since(started), Min: opts.TracerConfig().Min, Groups: Groups(hists, slow),
		Devices: devs, Counters: counters, Missing: tr.Missing(), Unresolved: unresolved}
	if err := WriteSummary(w, sum); err != nil {
		return fmt.Errorf("writing summary: %w", err)
	}
	return werr
}
