package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/fslens"
)

func init() { commands = append(commands, newFSCmd) }

func newFSCmd() *cobra.Command {
	var o fslens.Options
	cmd := &cobra.Command{
		Use:   "fs --pid PID [--duration D] [--min 1ms] [--reads]",
		Short: "Trace a broker's slow file operations per topic-partition, with the journal beside them",
		Long: `fs traces, with eBPF, the write, pwrite64, writev, pwritev, pwritev2, fsync and
fdatasync calls (and with --reads read, pread64 and readv) of a process on regular
files. Operations of at least --min are printed as they happen: time, thread,
operation, topic-partition and file (Kafka's topic-N directories), bytes, latency,
and the ext4 journal (jbd2) commit or XFS log force they overlapped on the file's
device. Every operation, fast ones included, is counted in latency histograms in
the kernel; at the end (--duration, Ctrl-C, or when the process exits) fs prints
per topic-partition and operation counts, bytes, p50/p99/max and histograms, and
the journal commits of each device the process wrote to (with their phases:
locked, flushing, logging) and how many slow operations overlapped one.

Like ext4slower/xfsslower, but per partition and with the journal beside it.
Needs root and a kernel with BTF; mounts tracefs at /sys/kernel/tracing if needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fslens.Run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.PID, "pid", "p", 0, "process id of the broker")
	f.DurationVarP(&o.Duration, "duration", "d", 0, "how long to trace; 0 traces until Ctrl-C")
	f.DurationVar(&o.Min, "min", time.Millisecond, "print operations at least this slow; 0 prints every one")
	f.BoolVar(&o.Reads, "reads", false, "also trace read, pread64 and readv")
	f.IntVar(&o.MaxFiles, "max-files", 0, "(file, operation) histograms kept in the kernel (default 4096)")
	cmd.MarkFlagRequired("pid")
	return cmd
}
