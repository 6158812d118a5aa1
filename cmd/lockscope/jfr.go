package main

import (
	"encoding/json"
	"fmt"

	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newJFRCmd) }

func newJFRCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jfr",
		Short: "Inspect JFR recordings (async-profiler and JDK Flight Recorder)",
	}
	cmd.AddCommand(newJFRSummaryCmd())
	return cmd
}

func newJFRSummaryCmd() *cobra.Command {
	var opt jfr.SummaryOptions
	cmd := &cobra.Command{
		Use:   "summary FILE",
		Short: "Print a recording's chunks and per-type event counts and sizes",
		Long: `Print a recording's chunks (producer, start, duration, format version) and the
number and size of its events per type. Each chunk is read with its own
metadata, so recordings mixing JDK and async-profiler chunks (jfrsync) are
counted right. A truncated recording prints its complete chunks, then fails
naming the chunk and byte offset where it ends.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Path = args[0]
			if err := opt.Validate(); err != nil {
				return err
			}
			r, err := jfr.Open(opt.Path)
			if err != nil {
				return err
			}
			defer r.Close()
			s, readErr := jfr.Summarize(r)
			out := cmd.OutOrStdout()
			if opt.JSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(s); err != nil {
					return fmt.Errorf("writing summary: %w", err)
				}
			} else if err := s.WriteText(out, opt.Path); err != nil {
				return fmt.Errorf("writing summary: %w", err)
			}
			if readErr != nil {
				return fmt.Errorf("summarizing %s (complete chunks shown above): %w", opt.Path, readErr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opt.JSON, "json", false, "print JSON instead of a table")
	return cmd
}
