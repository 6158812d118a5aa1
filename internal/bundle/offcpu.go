package bundle

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/lockscope/lockscope/internal/offcpu"
)

// The off-CPU stream format, offcpu.jsonl, version 1. One JSON object per
// line:
//
//	{"format":"lockscope-offcpu","version":1}                    first line
//	{"frame":3,"name":"jbd2_log_wait_commit","kind":"kernel"}    a frame, defined once
//	{"stack":2,"frames":[3,1,7]}                                 a stack of frames, innermost first
//	{"tid":..,"tgid":..,"thread":"..","start":..,"end":..,"wake":..,"state":2,"cpu":..,
//	 "waker":..,"waker_thread":"..","kernel":2,"user":0,"waker_stack":0,"kernel_err":0}   an interval
//
// Frames and stacks are defined before the first interval that uses them;
// id 0 means "no stack". Times are CLOCK_MONOTONIC nanoseconds, thread ids
// host ids, state the scheduler's prev_state (offcpu.State). "wake" is when
// the thread was last woken during the interval (absent: no wakeup seen, as
// for a preemption): start to wake it was blocked, wake to end it waited for
// a CPU. "waker_thread" names the waker when it could be read (a kernel
// thread such as jbd2, another process's thread). Frame kinds:
// "kernel", "native" (module is the ELF file), "jit" (from the JVM's perf
// map), "unknown" (name is the address). A reader skips lines with keys it
// does not know, so fields can be added within a version.
const (
	offcpuFormat  = "lockscope-offcpu"
	offcpuVersion = 1
)

// Frame kinds of off-CPU stacks.
const (
	KindKernel  = "kernel"
	KindNative  = "native"
	KindJIT     = "jit"
	KindUnknown = "unknown"
)

// Frame is one symbolized frame of an off-CPU stack.
type Frame struct {
	Name   string `json:"name"`
	Module string `json:"module,omitempty"`
	Kind   string `json:"kind"`
}

// Interval is one symbolized off-CPU interval (an offcpu.Interval with names).
type Interval struct {
	TID, TGID  uint32
	Thread     string
	Start, End uint64
	State      offcpu.State
	// Wakeup is when the thread was last woken during the interval, 0 if
	// no wakeup was seen (offcpu.Interval.Wakeup).
	Wakeup      uint64
	CPU         uint32
	WakerTID    uint32
	WakerThread string
	// Kernel, User and Waker are innermost first. Slices returned by
	// ReadOffCPU are shared between intervals with the same stack: do not
	// modify them.
	Kernel, User, Waker []Frame
	KernelErr           int32
}

type offcpuLine struct {
	Format  string `json:"format,omitempty"`
	Version int    `json:"version,omitempty"`

	FrameID *uint32 `json:"frame,omitempty"`
	Name    string  `json:"name,omitempty"`
	Module  string  `json:"module,omitempty"`
	Kind    string  `json:"kind,omitempty"`

	StackID *uint32  `json:"stack,omitempty"`
	Frames  []uint32 `json:"frames,omitempty"`

	TID        uint32  `json:"tid,omitempty"`
	TGID       uint32  `json:"tgid,omitempty"`
	Thread     string  `json:"thread,omitempty"`
	Start      *uint64 `json:"start,omitempty"`
	End        uint64  `json:"end,omitempty"`
	Wake       uint64  `json:"wake,omitempty"`
	State      uint8   `json:"state"`
	CPU        uint32  `json:"cpu,omitempty"`
	Waker      uint32  `json:"waker,omitempty"`
	WakerName  string  `json:"waker_thread,omitempty"`
	KernelID   uint32  `json:"kernel,omitempty"`
	UserID     uint32  `json:"user,omitempty"`
	WakerStack uint32  `json:"waker_stack,omitempty"`
	KernelErr  int32   `json:"kernel_err,omitempty"`
}

// OffCPUWriter writes the off-CPU stream, defining each frame and stack once.
type OffCPUWriter struct {
	w       *bufio.Writer
	frames  map[Frame]uint32
	stacks  map[string]uint32
	key     []byte
	n       int64
	started bool
	err     error
}

// NewOffCPUWriter starts an off-CPU stream on w (its header line is written
// on the first Write or on Flush).
func NewOffCPUWriter(w io.Writer) *OffCPUWriter {
	return &OffCPUWriter{w: bufio.NewWriterSize(w, 256<<10), frames: map[Frame]uint32{}, stacks: map[string]uint32{}}
}

func (o *OffCPUWriter) line(v *offcpuLine) {
	if o.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		o.err = err
		return
	}
	b = append(b, '\n')
	if _, err := o.w.Write(b); err != nil {
		o.err = hint(err)
	}
}

func (o *OffCPUWriter) header() {
	if !o.started {
		o.started = true
		o.line(&offcpuLine{Format: offcpuFormat, Version: offcpuVersion})
	}
}

func (o *OffCPUWriter) stack(frames []Frame) uint32 {
	if len(frames) == 0 {
		return 0
	}
	o.key = o.key[:0]
	for _, f := range frames {
		id, ok := o.frames[f]
		if !ok {
			id = uint32(len(o.frames) + 1)
			o.frames[f] = id
			o.line(&offcpuLine{FrameID: &id, Name: f.Name, Module: f.Module, Kind: f.Kind})
		}
		o.key = strconv.AppendUint(o.key, uint64(id), 10)
		o.key = append(o.key, ',')
	}
	if id, ok := o.stacks[string(o.key)]; ok {
		return id
	}
	id := uint32(len(o.stacks) + 1)
	o.stacks[string(o.key)] = id
	ids := make([]uint32, len(frames))
	for i, f := range frames {
		ids[i] = o.frames[f]
	}
	o.line(&offcpuLine{StackID: &id, Frames: ids})
	return id
}

// Write appends one interval.
func (o *OffCPUWriter) Write(iv *Interval) error {
	o.header()
	k, u, w := o.stack(iv.Kernel), o.stack(iv.User), o.stack(iv.Waker)
	start := iv.Start
	o.line(&offcpuLine{TID: iv.TID, TGID: iv.TGID, Thread: iv.Thread, Start: &start, End: iv.End, Wake: iv.Wakeup,
		State: uint8(iv.State), CPU: iv.CPU, Waker: iv.WakerTID, WakerName: iv.WakerThread, KernelID: k, UserID: u, WakerStack: w,
		KernelErr: iv.KernelErr})
	o.n++
	if o.err != nil {
		return fmt.Errorf("writing off-CPU intervals: %w", o.err)
	}
	return nil
}

// Count is the number of intervals written.
func (o *OffCPUWriter) Count() int64 { return o.n }

// Flush writes out what is buffered.
func (o *OffCPUWriter) Flush() error {
	o.header()
	if o.err == nil {
		if err := o.w.Flush(); err != nil {
			o.err = hint(err)
		}
	}
	if o.err != nil {
		return fmt.Errorf("writing off-CPU intervals: %w", o.err)
	}
	return nil
}

// ReadOffCPU streams the intervals of an off-CPU stream to fn, which must
// not keep iv after it returns (the record is reused; its stack slices are
// not, and may be kept). A malformed line ends the read with an error naming
// its line number, after every interval before it was delivered.
func ReadOffCPU(r io.Reader, fn func(iv *Interval) error) error {
	frames := map[uint32]Frame{}
	stacks := map[uint32][]Frame{}
	var iv Interval
	lookup := func(id uint32, lineNo int) ([]Frame, error) {
		if id == 0 {
			return nil, nil
		}
		s, ok := stacks[id]
		if !ok {
			return nil, fmt.Errorf("off-CPU stream line %d: undefined stack %d", lineNo, id)
		}
		return s, nil
	}
	return readStream(r, "off-CPU", offcpuFormat, offcpuVersion, 256<<10,
		func(l *offcpuLine) (string, int) { return l.Format, l.Version },
		func(lineNo int, l *offcpuLine) error {
			var err error
			switch {
			case l.FrameID != nil:
				frames[*l.FrameID] = Frame{Name: l.Name, Module: l.Module, Kind: l.Kind}
			case l.StackID != nil:
				s := make([]Frame, len(l.Frames))
				for i, id := range l.Frames {
					f, ok := frames[id]
					if !ok {
						return fmt.Errorf("off-CPU stream line %d: undefined frame %d", lineNo, id)
					}
					s[i] = f
				}
				stacks[*l.StackID] = s
			case l.Start != nil:
				iv = Interval{TID: l.TID, TGID: l.TGID, Thread: l.Thread, Start: *l.Start, End: l.End, Wakeup: l.Wake,
					State: offcpu.State(l.State), CPU: l.CPU, WakerTID: l.Waker, WakerThread: l.WakerName, KernelErr: l.KernelErr}
				if iv.Kernel, err = lookup(l.KernelID, lineNo); err != nil {
					return err
				}
				if iv.User, err = lookup(l.UserID, lineNo); err != nil {
					return err
				}
				if iv.Waker, err = lookup(l.WakerStack, lineNo); err != nil {
					return err
				}
				return fn(&iv)
			}
			return nil
		})
}
