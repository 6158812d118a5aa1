package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/continuous"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/pyroscope"
)

func init() { commands = append(commands, newContinuousCmd) }

// continuousFlags are what continuous binds besides continuous.Options:
// secrets are read from files, never taken on the command line.
type continuousFlags struct {
	passwordFile, tokenFile string
}

func newContinuousCmd() *cobra.Command {
	o := continuous.Options{
		Capture: capture.Options{
			SLO:      65 * time.Millisecond,
			Kind:     "service",
			Latency:  "kafka:9092",
			Profiler: profiler.DefaultOptions(),
			MinBlock: time.Millisecond,
			Version:  version,
		},
		Period: continuous.DefaultPeriod,
	}
	var fl continuousFlags
	cmd := &cobra.Command{
		Use:   "continuous --pid PID --pyroscope URL",
		Short: "Profile a broker period after period and push the profiles to Pyroscope, split by SLO breach",
		Long: `continuous captures the broker JVM for one --period after another (as
lockscope capture does: profiler, off-CPU intervals, produce latency) and
pushes each period's merged profiles to Pyroscope: what the threads did
while produce latency exceeded the SLO with the label slo_breach="true",
the rest with slo_breach="false", one profile type per kind of time:

  wall:wall:nanoseconds:wall:nanoseconds                          wall clock
  switched_out:switched_out:nanoseconds:switched_out:nanoseconds  off-CPU
  lock:lock:nanoseconds:lock:nanoseconds                          lock contention
  blame:blame:nanoseconds:blame:nanoseconds                       lock waits charged to the holder
  process_cpu:cpu:nanoseconds:cpu:nanoseconds                     CPU (--cpu, or JFR's execution samples)

Query them in Grafana with e.g. {service_name="kafka-broker", slo_breach="true"}.
Every series also has host and broker labels, and the thread_pool and state
of the samples. When Pyroscope is unreachable, profiles are retried with
back-off and the oldest are dropped beyond a bounded queue.

Ctrl-C or SIGTERM ends the period in flight, pushes it, and stops; nothing is
left running in the JVM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fl.apply(&o.Pyroscope); err != nil {
				return err
			}
			o.Capture.Labels = o.Pyroscope.Labels
			errOut := cmd.ErrOrStderr()
			o.Logf = func(format string, args ...any) {
				fmt.Fprintf(errOut, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
			}
			o.OnReport = func(rep *capture.Report) {
				for _, w := range rep.Meta.Warnings {
					fmt.Fprintln(errOut, "warning:", w)
				}
			}
			return continuous.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Pyroscope.URL, "pyroscope", "", "Pyroscope server URL, e.g. http://127.0.0.1:4040")
	f.DurationVar(&o.Period, "period", o.Period, "length of each capture; one push per period")
	f.StringVar(&o.Pyroscope.AppName, "app", pyroscope.DefaultAppName, "application name in Pyroscope (service_name)")
	f.StringToStringVar(&o.Pyroscope.Labels, "label", nil, "extra key=value label on every series (repeatable; host and broker override the defaults)")
	f.StringVar(&o.Pyroscope.BasicAuthUser, "pyroscope-user", "", "basic auth user")
	f.StringVar(&fl.passwordFile, "pyroscope-password-file", "", "file holding the basic auth password")
	f.StringVar(&fl.tokenFile, "pyroscope-token-file", "", "file holding a bearer token")
	f.StringVar(&o.Pyroscope.TenantID, "pyroscope-tenant", "", "tenant id (X-Scope-OrgID) of a multi-tenant Pyroscope")
	f.StringVar(&o.KeepBundles, "keep-bundles", "", "keep each period's bundle in this directory (no retention); default: removed after the push")
	f.IntVar(&o.Capture.PID, "pid", 0, "the broker JVM's process id")
	bindCaptureFlags(f, &o.Capture, "the period")
	return cmd
}

// apply reads the secret files into po.
func (fl *continuousFlags) apply(po *pyroscope.Options) error {
	read := func(flag, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("--%s %s: the file is empty", flag, path)
		}
		return s, nil
	}
	var err error
	if fl.passwordFile != "" {
		if po.BasicAuthPassword, err = read("pyroscope-password-file", fl.passwordFile); err != nil {
			return err
		}
	}
	if fl.tokenFile != "" {
		if po.BearerToken, err = read("pyroscope-token-file", fl.tokenFile); err != nil {
			return err
		}
	}
	return nil
}
