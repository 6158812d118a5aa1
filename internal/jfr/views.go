package jfr

import "math"

// Base is what every typed view carries: when, on which thread, where.
// Start is Unix epoch ns, Duration ns (0 for instant events); StartTicks
// is the raw timestamp for Chunk.MonotonicNanos.
type Base struct {
	StartTicks int64
	Start      int64
	Duration   int64
	Thread     *Thread // nil when the event has none, or the JDK omitted it
	Stack      *Stack  // nil when recorded without a stack
}

// Base fills the common part of every view.
func (e *Event) Base() Base {
	st := e.StartTicks()
	return Base{StartTicks: st, Start: e.c.EpochNanos(st), Duration: e.Duration(), Thread: e.Thread(), Stack: e.Stack()}
}

// ExecutionSample is jdk.ExecutionSample (CPU samples; async-profiler's
// wall samples with nobatch) and jdk.NativeMethodSample.
type ExecutionSample struct {
	Base
	State string // STATE_RUNNABLE, STATE_SLEEPING, STATE_DEFAULT...
}

// WallClockSample is async-profiler's profiler.WallClockSample. One event
// can stand for Samples consecutive samples of an idle thread over
// TimeSpan; each sample weighs the wall interval.
type WallClockSample struct {
	Base
	State    string
	Samples  int64
	TimeSpan int64 // ns
}

// MonitorEnter is jdk.JavaMonitorEnter: a thread blocked entering a
// synchronized block for Duration.
type MonitorEnter struct {
	Base
	MonitorClass  *Class
	PreviousOwner *Thread // set by the JDK; always nil from async-profiler
	Address       uint64
}

// MonitorWait is jdk.JavaMonitorWait (Object.wait).
type MonitorWait struct {
	Base
	MonitorClass *Class
	Notifier     *Thread
	Timeout      int64 // ns
	TimedOut     bool
	Address      uint64
}

// ThreadPark is jdk.ThreadPark (LockSupport.park: j.u.c. locks, sleeps).
type ThreadPark struct {
	Base
	ParkedClass *Class // nil for blocker-less parkNanos
	Timeout     int64  // ns; 0 or negative when none
	Until       int64  // epoch ms; math.MinInt64 when none
	Address     uint64
}

// Allocation is jdk.ObjectAllocationInNewTLAB, ObjectAllocationOutsideTLAB,
// ObjectAllocationSample and profiler.LiveObject.
type Allocation struct {
	Base
	ObjectClass    *Class
	AllocationSize int64 // bytes of the object (0 for ObjectAllocationSample)
	TLABSize       int64 // bytes of the new TLAB (InNewTLAB only)
	Weight         int64 // bytes the sample stands for (ObjectAllocationSample)
}

// ThreadSleep is jdk.ThreadSleep.
type ThreadSleep struct {
	Base
	Time int64 // requested sleep, ns
}

// FileIO is jdk.FileRead, jdk.FileWrite and jdk.FileForce.
type FileIO struct {
	Base
	Path      string
	Bytes     int64 // bytesRead / bytesWritten; 0 for FileForce
	EndOfFile bool
	MetaData  bool // FileForce: metadata forced too
}

// SocketIO is jdk.SocketRead and jdk.SocketWrite.
type SocketIO struct {
	Base
	Host, Address string
	Port          int64
	Bytes         int64
	Timeout       int64 // ns
	EndOfStream   bool
}

// GCPause is jdk.GarbageCollection, jdk.GCPhasePause* and the safepoint
// events jdk.SafepointBegin / jdk.ExecuteVMOperation: a stop of the JVM's
// threads with its Duration.
type GCPause struct {
	Base
	GCID        int64 // or safepointId
	Name        string
	Cause       string
	LongestStop int64 // ns (GarbageCollection.longestPause)
}

// NativeMemory is async-profiler's profiler.Malloc, profiler.Free and
// profiler.NativeLock (Duration set for NativeLock).
type NativeMemory struct {
	Base
	Address uint64
	Size    int64
}

// Span is profiler.Span and jdk.MethodTrace: a timed region.
type Span struct {
	Base
	Tag    string
	Method *Method
}

func (e *Event) is(names ...string) bool {
	for _, n := range names {
		if e.Type.Name == n {
			return true
		}
	}
	return false
}

func (e *Event) intOr0(name string) int64 {
	v, _ := e.Int(name)
	return v
}

func (e *Event) str0(name string) string {
	v, _ := e.String(name)
	return v
}

// Nanos reads a Timespan field (duration, timeout, timeSpan...) in
// nanoseconds, honouring its jdk.jfr.Timespan unit (ticks when unstated).
func (e *Event) Nanos(name string) (int64, bool) {
	f, v, ok := e.field(name)
	if !ok || f.Array || f.ConstantPool || f.Type.kind != kLong && f.Type.kind != kInt {
		return 0, false
	}
	n := signed(f.Type.kind, v)
	unit := "TICKS"
	if a, ok := f.Annotation("jdk.jfr.Timespan"); ok && a.Values["value"] != "" {
		unit = a.Values["value"]
	}
	if n == math.MinInt64 || n == math.MaxInt64 {
		return n, true
	}
	switch unit {
	case "NANOSECONDS":
		return n, true
	case "MICROSECONDS":
		return n * 1e3, true
	case "MILLISECONDS":
		return n * 1e6, true
	case "SECONDS":
		return n * 1e9, true
	}
	return e.c.TicksToNanos(n), true
}

func (e *Event) nanos0(name string) int64 {
	v, _ := e.Nanos(name)
	return v
}

// ExecutionSample views jdk.ExecutionSample and jdk.NativeMethodSample.
func (e *Event) ExecutionSample() (ExecutionSample, bool) {
	if !e.is("jdk.ExecutionSample", "jdk.NativeMethodSample") {
		return ExecutionSample{}, false
	}
	return ExecutionSample{Base: e.Base(), State: e.str0("state")}, true
}

// WallClockSample views profiler.WallClockSample.
func (e *Event) WallClockSample() (WallClockSample, bool) {
	if !e.is("profiler.WallClockSample") {
		return WallClockSample{}, false
	}
	s := WallClockSample{Base: e.Base(), State: e.str0("state"), Samples: e.intOr0("samples"), TimeSpan: e.nanos0("timeSpan")}
	if f, v, ok := e.field("samples"); ok && f.Type.kind == kInt {
		s.Samples = int64(uint32(v)) // declared unsigned
	}
	return s, true
}

// MonitorEnter views jdk.JavaMonitorEnter.
func (e *Event) MonitorEnter() (MonitorEnter, bool) {
	if !e.is("jdk.JavaMonitorEnter") {
		return MonitorEnter{}, false
	}
	return MonitorEnter{Base: e.Base(), MonitorClass: e.Class("monitorClass"), PreviousOwner: e.ThreadField("previousOwner"),
		Address: uint64(e.intOr0("address"))}, true
}

// MonitorWait views jdk.JavaMonitorWait.
func (e *Event) MonitorWait() (MonitorWait, bool) {
	if !e.is("jdk.JavaMonitorWait") {
		return MonitorWait{}, false
	}
	return MonitorWait{Base: e.Base(), MonitorClass: e.Class("monitorClass"), Notifier: e.ThreadField("notifier"),
		Timeout: e.nanos0("timeout"), TimedOut: e.intOr0("timedOut") != 0, Address: uint64(e.intOr0("address"))}, true
}

// ThreadPark views jdk.ThreadPark.
func (e *Event) ThreadPark() (ThreadPark, bool) {
	if !e.is("jdk.ThreadPark") {
		return ThreadPark{}, false
	}
	p := ThreadPark{Base: e.Base(), ParkedClass: e.Class("parkedClass"), Timeout: e.nanos0("timeout"),
		Until: math.MinInt64, Address: uint64(e.intOr0("address"))}
	if u, ok := e.Int("until"); ok {
		p.Until = u
	}
	return p, true
}

// Allocation views the allocation events (see Allocation).
func (e *Event) Allocation() (Allocation, bool) {
	if !e.is("jdk.ObjectAllocationInNewTLAB", "jdk.ObjectAllocationOutsideTLAB", "jdk.ObjectAllocationSample", "profiler.LiveObject") {
		return Allocation{}, false
	}
	return Allocation{Base: e.Base(), ObjectClass: e.Class("objectClass"), AllocationSize: e.intOr0("allocationSize"),
		TLABSize: e.intOr0("tlabSize"), Weight: e.intOr0("weight")}, true
}

// ThreadSleep views jdk.ThreadSleep.
func (e *Event) ThreadSleep() (ThreadSleep, bool) {
	if !e.is("jdk.ThreadSleep") {
		return ThreadSleep{}, false
	}
	return ThreadSleep{Base: e.Base(), Time: e.nanos0("time")}, true
}

// FileIO views jdk.FileRead, jdk.FileWrite and jdk.FileForce.
func (e *Event) FileIO() (FileIO, bool) {
	if !e.is("jdk.FileRead", "jdk.FileWrite", "jdk.FileForce") {
		return FileIO{}, false
	}
	f := FileIO{Base: e.Base(), Path: e.str0("path"), EndOfFile: e.intOr0("endOfFile") != 0, MetaData: e.intOr0("metaData") != 0}
	if e.Type.Name == "jdk.FileRead" {
		f.Bytes = e.intOr0("bytesRead")
	} else {
		f.Bytes = e.intOr0("bytesWritten")
	}
	return f, true
}

// SocketIO views jdk.SocketRead and jdk.SocketWrite.
func (e *Event) SocketIO() (SocketIO, bool) {
	if !e.is("jdk.SocketRead", "jdk.SocketWrite") {
		return SocketIO{}, false
	}
	s := SocketIO{Base: e.Base(), Host: e.str0("host"), Address: e.str0("address"), Port: e.intOr0("port"),
		Timeout: e.nanos0("timeout"), EndOfStream: e.intOr0("endOfStream") != 0}
	if e.Type.Name == "jdk.SocketRead" {
		s.Bytes = e.intOr0("bytesRead")
	} else {
		s.Bytes = e.intOr0("bytesWritten")
	}
	return s, true
}

// GCPause views GC pauses and safepoints (see GCPause).
func (e *Event) GCPause() (GCPause, bool) {
	switch n := e.Type.Name; {
	case n == "jdk.GarbageCollection":
		return GCPause{Base: e.Base(), GCID: e.intOr0("gcId"), Name: e.str0("name"), Cause: e.str0("cause"), LongestStop: e.nanos0("longestPause")}, true
	case len(n) > len("jdk.GCPhasePause") && n[:len("jdk.GCPhasePause")] == "jdk.GCPhasePause" || n == "jdk.GCPhasePause":
		return GCPause{Base: e.Base(), GCID: e.intOr0("gcId"), Name: e.str0("name")}, true
	case n == "jdk.SafepointBegin" || n == "jdk.SafepointStateSynchronization" || n == "jdk.SafepointEnd":
		return GCPause{Base: e.Base(), GCID: e.intOr0("safepointId"), Name: n}, true
	case n == "jdk.ExecuteVMOperation":
		return GCPause{Base: e.Base(), GCID: e.intOr0("safepointId"), Name: e.str0("operation")}, true
	}
	return GCPause{}, false
}

// NativeMemory views profiler.Malloc, profiler.Free and profiler.NativeLock.
func (e *Event) NativeMemory() (NativeMemory, bool) {
	if !e.is("profiler.Malloc", "profiler.Free", "profiler.NativeLock") {
		return NativeMemory{}, false
	}
	return NativeMemory{Base: e.Base(), Address: uint64(e.intOr0("address")), Size: e.intOr0("size")}, true
}

// Span views profiler.Span and jdk.MethodTrace.
func (e *Event) Span() (Span, bool) {
	if !e.is("profiler.Span", "jdk.MethodTrace") {
		return Span{}, false
	}
	s := Span{Base: e.Base(), Tag: e.str0("tag")}
	if f, v, ok := e.field("method"); ok && isRefTo(*f, "jdk.types.Method") {
		s.Method = e.c.Method(v)
	}
	return s, true
}
