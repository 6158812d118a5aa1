// Command lockscope finds why a JVM message broker is slow in its tail: it
// records what the broker's threads did while produce requests exceeded the
// SLO, joining Java stacks (async-profiler or JDK Flight Recorder) with kernel
// stacks (eBPF off-CPU intervals), and shows the result as flame graphs.
//
// This package binds flags into each part's options and is the only place
// that exits the process.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the subcommands; each lives in its own
// file of this package and adds itself in an init function, so that the root
// command knows nothing of their flags.
var commands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "lockscope",
		Short: "Find why a JVM message broker is slow in its tail",
		Long: `lockscope finds why a JVM message broker (Apache Kafka first) is slow in its
tail. It drives async-profiler (or the JDK Flight Recorder) inside the broker,
records the off-CPU intervals and kernel stacks of the broker's threads with
eBPF, knows the latency of every produce request by sniffing the Kafka
protocol, and merges all of it into flame graphs of the moments when produce
latency exceeded the SLO, next to a baseline of the moments when it did not.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockscope:", err)
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		os.Exit(1)
	}
}
