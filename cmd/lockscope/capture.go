package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/cluster"
	"github.com/lockscope/lockscope/internal/profiler"
)

func init() { commands = append(commands, newCaptureCmd) }

func newCaptureCmd() *cobra.Command {
	o := capture.Options{
		Duration: 60 * time.Second,
		SLO:      65 * time.Millisecond,
		Kind:     "service",
		Latency:  "kafka:9092",
		Profiler: profiler.DefaultOptions(),
		MinBlock: time.Millisecond,
		Version:  version,
	}
	var pids []int
	cmd := &cobra.Command{
		Use:   "capture --pid PID [--pid PID...] [-o DIR]",
		Short: "Record what a broker's threads did while produce latency exceeded the SLO",
		Long: `capture profiles a running broker JVM and writes a bundle: it starts
async-profiler (or, where it is not installed, the JDK Flight Recorder) in the
JVM through the attach mechanism, records the off-CPU intervals and kernel
stacks of the JVM's threads with eBPF, and sniffs the Kafka protocol on the
broker port for the latency of every produce request, all at once. Then it
merges them: slow.pb.gz holds what the threads did inside the windows where
produce latency exceeded the SLO, baseline.pb.gz the rest.

Ctrl-C ends the capture early and still writes everything. The profiler stops
by itself shortly after --duration even if lockscope is killed; lockscope
merge then recovers the bundle, with the recording the profiler left.

Several --pid (brokers of one cluster on this host) are captured at once,
each into its own bundle under -o, in the same slow windows. With acks=all a
produce request waits on its leader for the followers, and no thread of the
leader works on it meanwhile: when the latency source is the leader's
(its request log, or kafka:PORT on its port), the followers' verdicts in
the leader's windows name the follower that held the requests up, and why:

  lockscope capture --pid 101 --pid 102 --pid 103 \
      --latency requestlog:/var/log/kafka/kafka-request.log -o cluster-capture`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(pids) > 1 {
				return captureCluster(cmd, o, pids)
			}
			if len(pids) == 1 {
				o.PID = pids[0]
			}
			if o.Out == "" {
				o.Out = fmt.Sprintf("lockscope-%d-%s", o.PID, time.Now().Format("20060102-150405"))
			}
			o.Progress = cmd.ErrOrStderr()
			rep, err := capture.Run(cmd.Context(), o)
			if rep != nil && rep.Summary != nil {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "\nBundle: %s (%d produce requests, %d over the %v SLO)\n\n", rep.Dir, rep.Requests, rep.OverSLO, o.SLO)
				rep.Summary.WriteText(out)
				fmt.Fprintf(out, "\nFlame graphs: lockscope view %s   (or go tool pprof -http=: -diff_base=%s %s)\n",
					rep.Dir, filepath.Join(rep.Dir, bundle.BaselineProfile), filepath.Join(rep.Dir, bundle.SlowProfile))
				for _, w := range rep.Meta.Warnings {
					fmt.Fprintln(out, "warning:", w)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&pids, "pid", nil, "the broker JVM's process id; several (repeated or comma-separated) capture brokers of one cluster at once")
	bindCaptureFlags(f, &o, "--duration")
	f.DurationVar(&o.Duration, "duration", o.Duration, "how long to capture")
	f.IntSliceVar(&o.BrokerPorts, "broker-port", []int{9092}, "the broker's port in a pcap source")
	f.StringVarP(&o.Out, "output", "o", "", "bundle directory to create (default lockscope-PID-TIME)")
	f.StringToStringVar(&o.Labels, "label", nil, "key=value labels recorded in the bundle")
	return cmd
}

// bindCaptureFlags binds the flags of how a capture is made, shared by
// every command that captures (capture, continuous; each binds --pid); end
// names what ends one capture, for the help text.
func bindCaptureFlags(f *pflag.FlagSet, o *capture.Options, end string) {
	f.DurationVar(&o.SLO, "slo", o.SLO, "produce latency SLO: requests slower than this make the slow windows")
	f.DurationVar(&o.Pad, "pad", 0, "widen each slow window by this much on both sides")
	f.StringVar(&o.Kind, "latency-kind", o.Kind, "latency compared with the SLO: service or wire")
	f.StringVar(&o.Latency, "latency", o.Latency, "latency source: kafka:PORT (sniff live), pcap:FILE, requestlog:FILE, csv:FILE, jsonl:FILE or none (a file is read when the capture ends, and checked when it starts)")
	f.StringVar(&o.Interface, "iface", "any", "interface to sniff on")
	f.Var(&o.Profiler.Profiler, "profiler", "auto (async-profiler if installed, else the JDK Flight Recorder), async-profiler or jfr")
	f.StringVar(&o.Profiler.AsyncProfilerHome, "async-profiler", "", "async-profiler's install directory (default: $"+profiler.EnvHome+", asprof on PATH, usual places)")
	f.DurationVar(&o.Profiler.Grace, "grace", o.Profiler.Grace, "the profiler stops by itself this long after "+end+" should lockscope die")
	f.DurationVar(&o.Profiler.Wall, "wall", o.Profiler.Wall, "wall-clock sampling interval")
	f.DurationVar(&o.Profiler.Lock, "lock", o.Profiler.Lock, "lock contention threshold")
	f.DurationVar(&o.Profiler.CPU, "cpu", 0, "also sample CPU at this interval (0: off)")
	f.DurationVar(&o.MinBlock, "min-block", o.MinBlock, "shortest off-CPU interval recorded")
	f.BoolVar(&o.RequireOffCPU, "require-offcpu", false, "fail instead of capturing without off-CPU intervals (no root, no BTF)")
	f.BoolVar(&o.NoFS, "no-fs", false, "skip the filesystem lens (the broker's writes and fsyncs per topic-partition, journal commits)")
	f.DurationVar(&o.FSMin, "fs-min", time.Millisecond, "record file operations at least this long one by one (all are counted in histograms)")
}

// captureCluster captures several brokers at once (package cluster).
func captureCluster(cmd *cobra.Command, o capture.Options, pids []int) error {
	co := cluster.Options{Capture: o, PIDs: pids, Out: o.Out}
	if co.Out == "" {
		co.Out = "lockscope-cluster-" + time.Now().Format("20060102-150405")
	}
	co.Capture.Out = ""
	co.Capture.Progress = cmd.ErrOrStderr()
	res, err := cluster.Run(cmd.Context(), co)
	if res != nil {
		writeCluster(cmd.OutOrStdout(), co.Out, res)
	}
	return err
}

// writeCluster prints a cluster capture's answer and where its bundles are.
func writeCluster(out io.Writer, dir string, res *cluster.Result) {
	b, err := os.ReadFile(filepath.Join(dir, cluster.SummaryText))
	if err != nil {
		fmt.Fprintf(out, "cluster capture in %s (its summary: %v)\n", dir, err)
		return
	}
	fmt.Fprintf(out, "\nCluster capture: %s\n\n%s\nFlame graphs:\n", dir, b)
	for _, m := range res.Members {
		fmt.Fprintf(out, "  %s: lockscope view %s\n", m.Name, filepath.Join(dir, m.Dir))
	}
}
