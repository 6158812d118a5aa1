package offcpuprof

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/symbolize"
)

// Frame is one named frame of an aggregated stack.
type Frame struct {
	Name   string
	Kernel bool
	// File is the mapped file of a user frame; "[kernel.kallsyms]" for
	// kernel frames.
	File string
}

// Stack is one aggregated (thread, state, stack) entry.
type Stack struct {
	Thread string
	TID    uint32
	State  offcpu.State
	// Frames are innermost first, as pprof wants them: kernel frames,
	// then user frames (eager mode).
	Frames []Frame
	Count  int64
	Nanos  int64
	// CPUWaitNanos is the part of Nanos the threads spent runnable after
	// their wakeup, waiting for a CPU.
	CPUWaitNanos int64
}

// Builder aggregates intervals.
type Builder struct {
	kernel *symbolize.Kernel
	procs  map[uint32]*symbolize.Process
	stacks map[string]*Stack
	// raw maps the raw form of an interval (thread, state, addresses) to
	// its aggregated entry, so that a stack seen before costs one map
	// lookup instead of symbolizing every frame again.
	raw    map[string]*Stack
	rawKey []byte
	// Intervals and Nanos are the totals added.
	Intervals int64
	Nanos     int64
}

// NewBuilder returns a Builder naming kernel frames with k.
func NewBuilder(k *symbolize.Kernel) *Builder {
	return &Builder{kernel: k, procs: map[uint32]*symbolize.Process{}, stacks: map[string]*Stack{}, raw: map[string]*Stack{}}
}

// AddProcess names the user frames of pid with p (eager mode).
func (b *Builder) AddProcess(pid uint32, p *symbolize.Process) { b.procs[pid] = p }

const kernelFile = "[kernel.kallsyms]"

// Add aggregates one interval.
func (b *Builder) Add(iv *offcpu.Interval) {
	k := binary.NativeEndian.AppendUint32(b.rawKey[:0], iv.TID)
	k = binary.NativeEndian.AppendUint32(k, iv.TGID)
	k = binary.NativeEndian.AppendUint32(k, uint32(iv.KernelErr))
	k = append(k, byte(iv.State), byte(len(iv.Kernel)))
	for _, a := range iv.Kernel {
		k = binary.NativeEndian.AppendUint64(k, a)
	}
	for _, a := range iv.User {
		k = binary.NativeEndian.AppendUint64(k, a)
	}
	k = append(k, iv.Thread...)
	b.rawKey = k
	s := b.raw[string(k)]
	if s == nil {
		s = b.symbolize(iv)
		b.raw[string(k)] = s
	}
	d := int64(iv.Duration())
	s.Count++
	s.Nanos += d
	s.CPUWaitNanos += d - int64(iv.Blocked())
	b.Intervals++
	b.Nanos += d
}

// symbolize returns the aggregated entry for a stack not seen before in
// its raw form.
func (b *Builder) symbolize(iv *offcpu.Interval) *Stack {
	var frames []Frame
	for _, name := range b.kernel.Stack(iv.Kernel) {
		frames = append(frames, Frame{Name: name, Kernel: true, File: kernelFile})
	}
	if iv.KernelErr != 0 {
		frames = append(frames, Frame{Name: fmt.Sprintf("[kernel stack unavailable: errno %d]", -iv.KernelErr), Kernel: true, File: kernelFile})
	}
	if p := b.procs[iv.TGID]; p != nil {
		for _, a := range iv.User {
			f := p.Lookup(a)
			frames = append(frames, Frame{Name: f.Name, File: f.File})
		}
	}
	var key strings.Builder
	fmt.Fprintf(&key, "%d\x00%s\x00%d", iv.TID, iv.Thread, iv.State)
	for _, f := range frames {
		key.WriteByte(0)
		key.WriteString(f.Name)
	}
	s := b.stacks[key.String()]
	if s == nil {
		s = &Stack{Thread: iv.Thread, TID: iv.TID, State: iv.State, Frames: frames}
		b.stacks[key.String()] = s
	}
	return s
}

// Stacks returns the aggregated entries, heaviest first.
func (b *Builder) Stacks() []*Stack {
	out := make([]*Stack, 0, len(b.stacks))
	for _, s := range b.stacks {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Nanos != out[j].Nanos {
			return out[i].Nanos > out[j].Nanos
		}
		return stackKey(out[i]) < stackKey(out[j])
	})
	return out
}

func stackKey(s *Stack) string {
	var k strings.Builder
	fmt.Fprintf(&k, "%s/%d/%d", s.Thread, s.TID, s.State)
	for _, f := range s.Frames {
		k.WriteString(";" + f.Name)
	}
	return k.String()
}

// threadName is the name shown for a thread: its comm, else its tid.
func threadName(s *Stack) string {
	if s.Thread != "" {
		return s.Thread
	}
	return fmt.Sprintf("tid-%d", s.TID)
}

// WriteFolded writes folded stacks, root first: thread;[state];user
// frames;kernel frames (suffixed _[k], as flamegraph.pl colours them) and
// the off-CPU nanoseconds.
func (b *Builder) WriteFolded(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, s := range b.Stacks() {
		parts := []string{folded(threadName(s)), "[" + s.State.String() + "]"}
		for i := len(s.Frames) - 1; i >= 0; i-- {
			f := s.Frames[i]
			name := folded(f.Name)
			if f.Kernel {
				name += "_[k]"
			}
			parts = append(parts, name)
		}
		fmt.Fprintf(bw, "%s %d\n", strings.Join(parts, ";"), s.Nanos)
	}
	return bw.Flush()
}

// folded keeps the separators of the format out of a frame name.
func folded(s string) string {
	return strings.NewReplacer(";", ":", " ", "_", "\n", "_").Replace(s)
}

// Profile builds the pprof profile. start is when collection started and
// d how long it ran; comments are kept in the profile (the command line,
// the counters).
func (b *Builder) Profile(start time.Time, d time.Duration, comments ...string) (*profile.Profile, error) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "events", Unit: "count"},
			{Type: "offcpu", Unit: "nanoseconds"},
			// The part of offcpu after the wakeup: CPU starvation
			// rather than waiting for a lock, I/O or a timer.
			{Type: "cpu_wait", Unit: "nanoseconds"},
		},
		DefaultSampleType: "offcpu",
		PeriodType:        &profile.ValueType{Type: "offcpu", Unit: "nanoseconds"},
		Period:            1,
		TimeNanos:         start.UnixNano(),
		DurationNanos:     d.Nanoseconds(),
		Comments:          comments,
	}
	mappings := map[string]*profile.Mapping{}
	mapping := func(file string, kernel bool) *profile.Mapping {
		if file == "" {
			file = "[unknown]"
		}
		m := mappings[file]
		if m == nil {
			m = &profile.Mapping{ID: uint64(len(p.Mapping) + 1), File: file, HasFunctions: true}
			if kernel {
				m.Start = 0xffff800000000000
				m.Limit = ^uint64(0)
			}
			mappings[file] = m
			p.Mapping = append(p.Mapping, m)
		}
		return m
	}
	type locKey struct {
		name, file string
	}
	funcs := map[string]*profile.Function{}
	locs := map[locKey]*profile.Location{}
	for _, s := range b.Stacks() {
		sample := &profile.Sample{
			Value: []int64{s.Count, s.Nanos, s.CPUWaitNanos},
			Label: map[string][]string{
				"thread": {threadName(s)},
				"state":  {s.State.String()},
			},
			NumLabel: map[string][]int64{"tid": {int64(s.TID)}},
		}
		for _, f := range s.Frames {
			k := locKey{f.Name, f.File}
			loc := locs[k]
			if loc == nil {
				fn := funcs[f.Name]
				if fn == nil {
					fn = &profile.Function{ID: uint64(len(p.Function) + 1), Name: f.Name, SystemName: f.Name, Filename: f.File}
					funcs[f.Name] = fn
					p.Function = append(p.Function, fn)
				}
				loc = &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: mapping(f.File, f.Kernel), Line: []profile.Line{{Function: fn}}}
				locs[k] = loc
				p.Location = append(p.Location, loc)
			}
			sample.Location = append(sample.Location, loc)
		}
		p.Sample = append(p.Sample, sample)
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("building off-CPU profile: %w", err)
	}
	return p, nil
}
