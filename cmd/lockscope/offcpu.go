package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/offcpuprof"
)

func init() { commands = append(commands, newOffcpuCmd) }

func newOffcpuCmd() *cobra.Command {
	var o offcpuprof.Options
	cmd := &cobra.Command{
		Use:   "offcpu --pid PID [--duration 10s] [--min-block 1ms] [--mode lazy|eager] [--format pprof|folded] [-o FILE]",
		Short: "Record an off-CPU flame graph of a process's threads with eBPF",
		Long: `offcpu records, with eBPF, every interval the threads of a process (a JVM)
spent off the CPU for at least --min-block, with the kernel stack they waited in
(futexes, ext4 journal commits, page-cache writeback...), and writes an off-CPU
flame graph: pprof (sample type offcpu/nanoseconds, labels thread, state and tid;
view with "go tool pprof -http=: offcpu.pb.gz"; -sample_index=cpu_wait shows only
the time threads spent runnable after their wakeup, waiting for a CPU) or folded
stacks (flamegraph.pl, speedscope). Like offcputime, but the default lazy mode walks a stack only when
a blocked thread comes back, which costs a fraction per context switch.

Needs root and a kernel with BTF. The last line on stderr counts events, drops
and failed stack walks: anything but events means missing data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return offcpuprof.Run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntSliceVarP(&o.PIDs, "pid", "p", nil, "process id(s) to follow, comma-separated (at most 8)")
	f.DurationVarP(&o.Duration, "duration", "d", 10*time.Second, "how long to collect; 0 runs until Ctrl-C")
	f.DurationVar(&o.MinBlock, "min-block", offcpu.DefaultMinBlock, "shortest off-CPU interval kept; 0 keeps every switch (costly)")
	f.StringVar(&o.Mode, "mode", string(offcpu.Lazy), "lazy: kernel stack at switch-in; eager: kernel+user stacks at switch-out (offcputime-like cost)")
	f.Uint32Var(&o.EagerSample, "eager-sample", 1, "eager mode: walk stacks at one switch-out in N (the others get the lazy kernel stack)")
	f.StringVar(&o.Format, "format", "pprof", "pprof or folded")
	f.StringVarP(&o.Output, "output", "o", "", `output file, "-" for stdout (default offcpu.pb.gz for pprof, stdout for folded)`)
	cmd.MarkFlagRequired("pid")
	return cmd
}
