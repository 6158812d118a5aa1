package main

import (
	"fmt"
	"path/filepath"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/cluster"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newMergeCmd) }

func newMergeCmd() *cobra.Command {
	var o capture.MergeOptions
	cmd := &cobra.Command{
		Use:   "merge BUNDLE",
		Short: "Re-merge a capture bundle offline into SLO-filtered profiles and a summary",
		Long: `merge joins a bundle's JFR recording and off-CPU intervals by thread and
time and splits them by the windows where produce latency exceeded the SLO:
slow.pb.gz (inside), baseline.pb.gz (outside), all.pb.gz (both, labelled),
folded wall stacks of each, and summary.txt/summary.json. Only the bundle's
raw inputs are read, so another SLO, padding or latency kind can be tried
on another machine:

  lockscope merge ./bundle --slo 100ms --latency-kind wire

The bundle of a capture that was killed (SIGKILL, the OOM killer) is
recovered first: merge collects the JFR recording the profiler left in the
JVM's /tmp (waiting, while the JVM runs, until the profiler's own deadline
has passed and the JVM has written it), drops the partial lines the kill
left at the end of the streams, ends the capture at its last collected data
and says what is missing.

A latency log that arrives after the capture (a client's, a load
generator's, a request log shipped later) is joined with --latency; its
requests make the windows instead of the bundle's own:

  lockscope merge ./bundle --latency csv:client-latency.csv --slo 65ms

Given the directory of a cluster capture (lockscope capture --pid A --pid B
...), merge re-merges every broker's bundle and joins them again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Progress = cmd.ErrOrStderr()
			if cluster.IsCluster(args[0]) {
				res, err := cluster.Merge(args[0], o)
				if res != nil {
					writeCluster(cmd.OutOrStdout(), args[0], res)
				}
				return err
			}
			sum, err := capture.MergeBundle(args[0], o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := sum.WriteText(out); err != nil {
				return err
			}
			dir := args[0]
			fmt.Fprintf(out, "\nFlame graphs: %s (diff base %s)\n  lockscope view %s   (diff per second of window)\n  go tool pprof -http=: -diff_base=%s %s   (diff in absolute time)\n",
				filepath.Join(dir, bundle.SlowProfile), filepath.Join(dir, bundle.BaselineProfile), dir,
				filepath.Join(dir, bundle.BaselineProfile), filepath.Join(dir, bundle.SlowProfile))
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.SLO, "slo", 0, "produce latency SLO (default: the one the bundle was captured with)")
	f.DurationVar(&o.Pad, "pad", 0, "widen each slow window by this much on both sides")
	f.StringVar(&o.Kind, "latency-kind", "", "latency compared with the SLO: service (excludes queueing behind a slow predecessor on the connection) or wire")
	f.IntVar(&o.Top, "top", 10, "length of each ranked list in the summary")
	f.StringVar(&o.Latency, "latency", "", "join a latency log that arrived after the capture: csv:FILE, jsonl:FILE, requestlog:FILE or pcap:FILE")
	f.IntSliceVar(&o.BrokerPorts, "broker-port", nil, "the broker's ports in a pcap --latency (default 9092)")
	return cmd
}
