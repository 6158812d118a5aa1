package main

import (
	"fmt"
	"strings"

	"github.com/lockscope/lockscope/internal/jfrconv"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newConvertCmd) }

func newConvertCmd() *cobra.Command {
	opt := jfrconv.Options{Event: "cpu", Format: "pprof"}
	cmd := &cobra.Command{
		Use:   "convert FILE.jfr",
		Short: "Convert a JFR recording to pprof or folded stacks",
		Long: `Convert a JFR recording (async-profiler or JDK Flight Recorder) into a pprof
profile (gzipped protobuf, for go tool pprof and Pyroscope) or folded stacks
(for flame-graph tools), for one kind of event:

  cpu, wall            samples and nanoseconds (batched wall samples count
                       their samples field)
  lock, monitor, park  contentions and delay nanoseconds (lock = both)
  sleep, io, nativelock  events and nanoseconds
  alloc, live, malloc  objects and bytes
  native               JDK native method samples

--from and --to take an RFC 3339 time, a duration from the recording's start
(5s) or epoch milliseconds. Samples carry thread labels; --threads also puts
each thread at the root of its stacks. A truncated recording converts its
complete chunks and says so.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Input = args[0]
			if err := opt.Validate(); err != nil {
				return err
			}
			st, err := jfrconv.Run(opt, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if st.Err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "lockscope: warning: converted the %d complete chunks only: %v\n", st.Chunks, st.Err)
			}
			if st.Events == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "lockscope: warning: no %s events in %s (%d outside --from/--to)\n", opt.Event, opt.Input, st.OutOfRange)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opt.Output, "output", "o", "", "output file (default: stdout)")
	f.StringVarP(&opt.Event, "event", "e", opt.Event, "event kind: "+strings.Join(jfrconv.Kinds, ", "))
	f.StringVar(&opt.Format, "format", opt.Format, "output format: "+strings.Join(jfrconv.Formats, ", "))
	f.StringVar(&opt.From, "from", "", "keep events starting at or after this time")
	f.StringVar(&opt.To, "to", "", "keep events starting before this time")
	f.BoolVar(&opt.Threads, "threads", false, "put each thread at the root of its stacks")
	return cmd
}
