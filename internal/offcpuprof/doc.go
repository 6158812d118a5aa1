// Package offcpuprof turns off-CPU intervals into a standalone off-CPU flame
// graph, like offcputime but from lockscope's cheap collector: a pprof
// profile (google/pprof/profile; sample types events/count,
// offcpu/nanoseconds and cpu_wait/nanoseconds, the part of offcpu spent
// runnable after the wakeup; labels thread, state and tid) or folded stacks for
// flamegraph.pl and speedscope. It also runs `lockscope offcpu`: Options
// holds the command's flags, Run collects and writes.
//
// A Builder aggregates intervals as they stream in, keeping one entry per
// distinct (thread, state, stack): memory grows with the number of distinct
// stacks, not with the capture length. It is not safe for concurrent use.
package offcpuprof
