package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/fslens"
)

func init() { commands = append(commands, newFSCmd) }

func newFSCmd() *cobra.Command {
	var o fslens.Options
	var dir string
	cmd := &cobra.Command{
		Use:   "fs --pid PID [--duration D] [--min 1ms] [--reads] | fs --bundle DIR",
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
Needs root and a kernel with BTF; mounts tracefs at /sys/kernel/tracing if needed.

--bundle DIR prints the same summary of what a capture's filesystem lens
recorded (the bundle's fs.jsonl), offline.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir != "" {
				return fsBundleSummary(dir, cmd.OutOrStdout())
			}
			return fslens.Run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "bundle", "", "summarize a capture bundle's recorded file operations instead of tracing")
	f.IntVarP(&o.PID, "pid", "p", 0, "process id of the broker")
	f.DurationVarP(&o.Duration, "duration", "d", 0, "how long to trace; 0 traces until Ctrl-C")
	f.DurationVar(&o.Min, "min", time.Millisecond, "print operations at least this slow; 0 prints every one")
	f.BoolVar(&o.Reads, "reads", false, "also trace read, pread64 and readv")
	f.IntVar(&o.MaxFiles, "max-files", 0, "(file, operation) histograms kept in the kernel (default 4096)")
	cmd.MarkFlagsOneRequired("pid", "bundle")
	cmd.MarkFlagsMutuallyExclusive("pid", "bundle")
	return cmd
}

// fsBundleSummary prints the filesystem summary of a bundle.
func fsBundleSummary(dir string, w io.Writer) error {
	b, err := bundle.Open(dir)
	if err != nil {
		return err
	}
	if b.Meta.FS == nil || !b.Has(bundle.FSStreamFile) {
		return fmt.Errorf("%s: the capture ran without the filesystem lens (no %s)", dir, bundle.FSStreamFile)
	}
	f, err := os.Open(b.Path(bundle.FSStreamFile))
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := bundle.ReadFS(f)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	s := fslens.SummarizeBundle(d, b.Meta.FS, b.Meta.Target.PID, time.Duration(b.Meta.End-b.Meta.Start))
	return fslens.WriteSummary(w, s)
}
