package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/pprofui"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newViewCmd) }

func newViewCmd() *cobra.Command {
	o := pprofui.Options{Addr: "127.0.0.1:8080"}
	cmd := &cobra.Command{
		Use:   "view BUNDLE|PROFILE",
		Short: "Open the pprof web UI on a bundle's slow profile, diffed against its baseline",
		Long: `view serves the pprof web UI (flame graph, top, graph, source) on a profile.

Given a bundle directory it shows slow.pb.gz (what the broker's threads did
while produce latency exceeded the SLO) with baseline.pb.gz as the diff base,
so what grew in the slow windows stands out, and serves the bundle's
report.html at /report when there is one. Given a profile file it shows that
file (--base adds a diff base).

The slow windows cover a few seconds and the baseline the rest of the
capture, so the base is scaled to the profile's duration first: the diff
compares time per second of window, not absolute time (--absolute turns
this off).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := resolveView(&o, args[0]); err != nil {
				return err
			}
			o.Log = cmd.ErrOrStderr()
			o.Ready = func(url string) {
				fmt.Fprintf(cmd.OutOrStdout(), "pprof web UI on %s (flame graph: %s/flamegraph); Ctrl-C to stop\n", url, url)
				if o.Extra["/report"] != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "the capture's report: %s/report\n", url)
				}
			}
			return pprofui.Serve(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Addr, "http", o.Addr, "address to serve the UI on (port 0: any free port)")
	cmd.Flags().StringVar(&o.Base, "base", "", "profile to subtract (pprof's -diff_base)")
	cmd.Flags().BoolVar(&o.Absolute, "absolute", false, "diff in absolute time instead of per second of the time each profile covers")
	cmd.Flags().BoolVar(&o.Browser, "browser", false, "open the UI in a browser")
	return cmd
}

// resolveView fills the profile (and base, report) from a bundle or a file.
func resolveView(o *pprofui.Options, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("view: %w", err)
	}
	if !st.IsDir() {
		o.Profile = path
		return nil
	}
	b, err := bundle.Open(path)
	if err != nil {
		return err
	}
	switch {
	case b.Has(bundle.SlowProfile):
		o.Profile = b.Path(bundle.SlowProfile)
		if o.Base == "" && b.Has(bundle.BaselineProfile) {
			o.Base = b.Path(bundle.BaselineProfile)
		}
	case b.Has(bundle.AllProfile):
		o.Profile = b.Path(bundle.AllProfile)
	default:
		return fmt.Errorf("view: bundle %s has no merged profiles: run lockscope merge %s", path, path)
	}
	if b.Has(bundle.ReportFile) {
		report := b.Path(bundle.ReportFile)
		o.Extra = map[string]http.Handler{"/report": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, report)
		})}
	}
	return nil
}
