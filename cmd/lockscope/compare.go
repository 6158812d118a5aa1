package main

import (
	"fmt"
	"os"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/report"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newCompareCmd) }

func newCompareCmd() *cobra.Command {
	var o report.CompareOptions
	var out, heatmaps string
	cmd := &cobra.Command{
		Use:   "compare A B [C...]",
		Short: "Lay captures (or request logs) side by side: percentiles, share over the SLO, heat maps, causes",
		Long: `compare reads bundles, requests.jsonl files, Kafka request logs or generic
latency files (CSV or JSONL) and shows them side by side: produce requests,
p50/p99/p99.9/max, count and share over the SLO, SLO-breach windows, latency
heat maps on one shared scale (HTML), and for bundles the shares of their top
causes (lock hot spots, kernel functions, Java frames) in the slow windows.

A file's kind is read from its first line; prefix requestlog:, csv: or
requests: to name it. Bundles keep their own SLO and latency kind unless
--slo or --latency-kind is given; request logs need --slo.

  lockscope compare ext4-ordered/ ext4-writeback/ xfs/
  lockscope compare --format html -o compare.html before/ after/
  lockscope compare --heatmaps maps/ before/ after/     (SVG and PNG files too)
  lockscope compare --slo 65ms requestlog:/var/log/kafka/kafka-request.log after/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			cmp, err := report.Compare(args, o)
			if err != nil {
				return err
			}
			if heatmaps != "" {
				files, err := cmp.WriteHeatmaps(heatmaps)
				if err != nil {
					return fmt.Errorf("compare: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d heat maps (SVG and PNG) to %s\n", len(files)/2, heatmaps)
			}
			if out == "" || out == "-" {
				return cmp.Write(cmd.OutOrStdout(), o.Format)
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("compare: %w", bundle.Hint(err))
			}
			werr := cmp.Write(f, o.Format)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return fmt.Errorf("compare: writing %s: %w", out, bundle.Hint(werr))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.SLO, "slo", 0, "produce latency SLO for all inputs (default: each bundle's own)")
	f.StringVar(&o.Kind, "latency-kind", "", "latency compared with the SLO: service or wire (default: each bundle's own, service for files)")
	f.StringVar(&o.Format, "format", "text", "output: text, json or html")
	f.StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	f.StringVar(&heatmaps, "heatmaps", "", "also write each input's heat map, on the shared scale, as SVG and PNG into this directory")
	f.IntVar(&o.Top, "top", 5, "how many of each bundle's top causes of each kind to compare")
	return cmd
}
