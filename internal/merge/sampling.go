package merge

import (
	"strconv"
	"strings"

	"github.com/lockscope/lockscope/internal/jfr"
)

// Sampling intervals when a recording does not state them: async-profiler's
// wall engine defaults to 50 ms and its cpu engine to 10 ms; the JDK's
// default.jfc and profile.jfc sample every 20 ms or 10 ms, the lower taken.
const (
	defaultAsprofWall = 50_000_000
	defaultAsprofCPU  = 10_000_000
	defaultJDKPeriod  = 20_000_000
)

// sampling is what a chunk's jdk.ActiveSetting events say about its samples.
type sampling struct {
	// wall is the weight of a wall sample (profiler.WallClockSample, or
	// jdk.ExecutionSample of async-profiler's wall engine with nobatch).
	wall int64
	// cpu is the weight of a CPU sample (jdk.ExecutionSample otherwise).
	cpu int64
	// native is the weight of a jdk.NativeMethodSample.
	native int64
	// execIsWall: async-profiler ran its wall engine, so its execution
	// samples are wall samples.
	execIsWall bool
}

// readSampling reads the chunk's settings; it leaves the chunk rewound.
// async-profiler writes its settings into the first chunk only, so a chunk
// without any keeps those of the chunk before (prev).
func readSampling(c *jfr.Chunk, prev *sampling) sampling {
	set := c.Metadata.Type("jdk.ActiveSetting")
	asprof := c.Producer == jfr.ProducerAsyncProfiler
	var engine string
	var interval, wall int64
	periods := map[string]int64{}
	found := false
	if set != nil {
		for c.Next() {
			ev := c.Event()
			if ev.Type != set {
				continue
			}
			found = true
			name, _ := ev.String("name")
			value, _ := ev.String("value")
			if asprof {
				switch name {
				case "engine":
					engine = value
				case "interval":
					interval, _ = strconv.ParseInt(value, 10, 64)
				case "wall":
					wall, _ = strconv.ParseInt(value, 10, 64)
				}
				continue
			}
			if name == "period" {
				id, _ := ev.Int("id")
				if t := c.Metadata.TypeByID(uint64(id)); t != nil {
					if ns, ok := javaDuration(value); ok {
						periods[t.Name] = ns
					}
				}
			}
		}
		c.Rewind()
	}
	if !found && prev != nil {
		return *prev
	}
	if !asprof {
		s := sampling{cpu: periods["jdk.ExecutionSample"], native: periods["jdk.NativeMethodSample"]}
		if s.cpu <= 0 {
			s.cpu = defaultJDKPeriod
		}
		if s.native <= 0 {
			s.native = defaultJDKPeriod
		}
		s.wall = s.cpu
		return s
	}
	s := sampling{execIsWall: engine == "wall", native: defaultJDKPeriod}
	switch {
	case engine == "wall":
		s.wall, s.cpu = orDefault(interval, defaultAsprofWall), 0
	default:
		s.cpu, s.wall = orDefault(interval, defaultAsprofCPU), orDefault(wall, defaultAsprofWall)
	}
	return s
}

func orDefault(v, d int64) int64 {
	if v > 0 {
		return v
	}
	return d
}

// javaDuration parses JFR setting values such as "10 ms", "1 s", "20 ms".
func javaDuration(s string) (int64, bool) {
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
