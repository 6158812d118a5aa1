package merge

import "github.com/lockscope/lockscope/internal/jfr"

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

// readSampling applies the chunk's settings over those in force (acc,
// carried from chunk to chunk: async-profiler writes its settings into the
// first chunk only) and leaves the chunk rewound.
func readSampling(c *jfr.Chunk, acc *jfr.Sampling) sampling {
	if set := c.Metadata.Type("jdk.ActiveSetting"); set != nil {
		for c.Next() {
			if ev := c.Event(); ev.Type == set {
				acc.Apply(c, ev)
			}
		}
		c.Rewind()
	}
	acc.AsyncProfiler = c.Producer == jfr.ProducerAsyncProfiler
	return sampling{wall: acc.WallInterval(), cpu: acc.CPUInterval(), native: acc.NativeInterval(), execIsWall: acc.ExecutionIsWall()}
}
