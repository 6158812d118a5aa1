package jfr

import (
	"strconv"
	"strings"
)

// Default sampling intervals of the producers, for chunks that do not state
// one (async-profiler writes interval=0 for "default").
const (
	DefaultAsprofCPUInterval  = 10_000_000 // ns
	DefaultAsprofWallInterval = 50_000_000 // ns
	DefaultJDKPeriod          = 20_000_000 // ns
)

// Sampling is what jdk.ActiveSetting events say about how samples were
// taken: async-profiler's engine and intervals, the JDK's period per event
// type. async-profiler writes its settings into its first chunk only, so a
// reader carries a Sampling from chunk to chunk and Applies what each adds.
type Sampling struct {
	AsyncProfiler bool
	// async-profiler: the engine ("wall", "cpu", "itimer"...), its
	// interval and the wall interval of event=cpu,wall=... (ns, 0: default).
	Engine         string
	Interval, Wall int64
	// JDK: the period of each sampled event type, ns.
	Periods map[string]int64
}

// Apply reads one jdk.ActiveSetting event of chunk c into s.
func (s *Sampling) Apply(c *Chunk, ev *Event) {
	name, _ := ev.String("name")
	value, _ := ev.String("value")
	if c.Producer == ProducerAsyncProfiler {
		s.AsyncProfiler = true
		switch name {
		case "engine":
			s.Engine = value
		case "interval":
			s.Interval, _ = strconv.ParseInt(value, 10, 64)
		case "wall":
			s.Wall, _ = strconv.ParseInt(value, 10, 64)
		}
		return
	}
	if name != "period" {
		return
	}
	id, ok := ev.Int("id")
	if !ok {
		return
	}
	if t := c.Metadata.TypeByID(uint64(id)); t != nil {
		if ns, ok := ParseSettingDuration(value); ok {
			if s.Periods == nil {
				s.Periods = map[string]int64{}
			}
			s.Periods[t.Name] = ns
		}
	}
}

// ExecutionIsWall reports whether jdk.ExecutionSample events are wall-clock
// samples: async-profiler's wall engine writes them so with nobatch.
func (s *Sampling) ExecutionIsWall() bool { return s.AsyncProfiler && s.Engine == "wall" }

// WallInterval is the weight of a wall-clock sample in ns. For the JDK,
// which has no wall sampler, it is the execution sample period.
func (s *Sampling) WallInterval() int64 {
	switch {
	case !s.AsyncProfiler:
		return s.period("jdk.ExecutionSample")
	case s.ExecutionIsWall():
		return orDefault(s.Interval, DefaultAsprofWallInterval)
	}
	return orDefault(s.Wall, DefaultAsprofWallInterval)
}

// CPUInterval is the weight of a CPU sample (jdk.ExecutionSample) in ns.
func (s *Sampling) CPUInterval() int64 {
	if !s.AsyncProfiler {
		return s.period("jdk.ExecutionSample")
	}
	return orDefault(s.Interval, DefaultAsprofCPUInterval)
}

// NativeInterval is the weight of a jdk.NativeMethodSample in ns.
func (s *Sampling) NativeInterval() int64 { return s.period("jdk.NativeMethodSample") }

func (s *Sampling) period(event string) int64 { return orDefault(s.Periods[event], DefaultJDKPeriod) }

func orDefault(v, d int64) int64 {
	if v > 0 {
		return v
	}
	return d
}

// ParseSettingDuration parses JFR setting values such as "10 ms" or "1 s".
func ParseSettingDuration(s string) (int64, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]int64{"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9}[f[1]]
	if unit == 0 {
		return 0, false
	}
	return n * unit, true
}
