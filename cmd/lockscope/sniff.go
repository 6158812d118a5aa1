package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/latency/sniff"
)

func init() { commands = append(commands, newSniffCmd) }

func newSniffCmd() *cobra.Command {
	var o sniff.RunOptions
	var tz string
	cmd := &cobra.Command{
		Use:   "sniff [--port 9092] [--iface any] [--read FILE] [--slo 65ms] [--duration D] [-o requests.jsonl]",
		Short: "Measure every produce request's latency by sniffing the Kafka protocol",
		Long: `sniff measures the latency of every Kafka produce request passively: it
captures the broker's traffic (AF_PACKET, no cgo, no libpcap) or reads a pcap or
pcapng file, reassembles TCP, parses the Kafka protocol and matches each
response to its request. Wire latency is response done − request done (what
tshark calls the time since request); service time leaves out the wait behind
a slow earlier request on the same connection, which Kafka answers in order.

Live, it prints a line per second (requests/s, p50, p99, max, count over the
SLO, kernel drops) and each slow request with its topic-partitions and client;
a summary closes every run. --read also takes a Kafka request log
(kafka.request.logger at DEBUG, JSON or the older text form) or a CSV/JSONL of
start times and durations. TLS listeners cannot be read from packets: use
their request log.

Live capture needs root or CAP_NET_RAW.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tz != "" {
				loc, err := time.LoadLocation(tz)
				if err != nil {
					return fmt.Errorf("--log-tz: %w", err)
				}
				o.Location = loc
			}
			_, err := sniff.Run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return err
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.Ports, "port", []int{9092}, "broker port(s), comma-separated")
	f.StringVar(&o.Interface, "iface", "any", "interface to capture on (any: all)")
	f.StringVarP(&o.Read, "read", "r", "", "read a pcap/pcapng capture, a Kafka request log or a latency CSV/JSONL instead of capturing")
	f.DurationVar(&o.SLO, "slo", 65*time.Millisecond, "latency objective: requests above it are slow")
	f.StringVar(&o.Metric, "metric", "wire", "latency compared to the SLO: wire or service")
	f.DurationVarP(&o.Duration, "duration", "d", 0, "how long to capture; 0 runs until Ctrl-C")
	f.StringVarP(&o.Output, "output", "o", "", `write every request as JSON lines to this file ("-" for stdout)`)
	f.StringVar(&o.Windows, "windows", "", "write the slow windows (JSONL, realtime clock) to this file")
	f.DurationVar(&o.Pad, "pad", 0, "widen each slow window by this much on both sides")
	f.StringVarP(&o.Write, "write", "w", "", "also write the captured packets to this pcap file")
	f.BoolVar(&o.AllAPIs, "all-apis", false, "report every request, not only produce")
	f.DurationVar(&o.Interval, "interval", time.Second, "report interval (live, or with --timeline)")
	f.BoolVar(&o.Timeline, "timeline", false, "with --read: print a line per interval of the input's own time")
	f.IntVar(&o.MaxSlowLines, "max-slow", 20, "slow requests printed per interval at most")
	f.StringVar(&tz, "log-tz", "", "time zone a request log was written in (default local)")
	return cmd
}
