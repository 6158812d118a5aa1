package main

import (
	"errors"
	"fmt"
	"log"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/serve"
)

func init() { commands = append(commands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var path string
	var check bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run as an agent: captures fired by Alertmanager or an SLO watch, Prometheus metrics",
		Long: `serve runs on the broker host until stopped (SIGTERM or Ctrl-C). It sniffs the
broker's Kafka port and exports the produce latency per topic on /metrics;
it starts a capture of the broker JVM when Alertmanager posts a matching
firing alert to /alerts (webhook, bearer token or basic auth) or when its own
SLO watch sees too many produce requests over the SLO; it keeps the bundles
under a directory with retention, and lists and serves them on /captures.

One capture runs at a time: a trigger while one runs joins it (202 with its
id). SIGTERM stops the capture in flight, writes what it collected, and
leaves nothing running in the broker. See scripts/monitoring/ for an example
config, Prometheus and Alertmanager configs and a systemd unit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return errors.New("--config: give the config file (see scripts/monitoring/lockscope-serve.yaml)")
			}
			cfg, err := serve.Load(path)
			if err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
				return nil
			}
			logger := log.New(cmd.ErrOrStderr(), "", log.LstdFlags)
			s, err := serve.New(cfg, serve.Options{Version: version, Logf: logger.Printf})
			if err != nil {
				return err
			}
			return s.Run(cmd.Context(), nil)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the YAML config file")
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the config (and read its credential files), then exit")
	return cmd
}
