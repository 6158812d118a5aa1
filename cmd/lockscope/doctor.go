package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/doctor"
	"github.com/lockscope/lockscope/internal/profiler"
)

func init() { commands = append(commands, newDoctorCmd) }

// checksFailed is doctor's error when a check failed: the report says
// which, the exit status says that one did.
type checksFailed int

func (n checksFailed) Error() string { return fmt.Sprintf("doctor: %d check(s) failed", int(n)) }
func (checksFailed) ExitCode() int   { return 1 }

func newDoctorCmd() *cobra.Command {
	o := doctor.DefaultOptions()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor [--pid PID] [--log-dirs DIR,...] [--experiment DIR|FILE] [--json]",
		Short: "Check a broker host: eBPF, privileges, the broker JVM's flags, and the filesystem of its log dirs",
		Long: `doctor checks what a capture depends on and what is known to make a broker
slow in its tail, and prints one line per check, PASS, INFO, WARN or FAIL,
with what to do:

  the host     BTF, privileges, whether the off-CPU BPF program loads (it is
               loaded for a moment and closed), tracefs, perf_event_paranoid,
               kptr_restrict (kernel symbols), unprivileged_bpf_disabled
  the JVM      attach, JDK, PreserveFramePointer, DebugNonSafepoints,
               DisableAttachMechanism, the Flight Recorder, async-profiler
  the log dirs from the broker's command line (server.properties and
               --override log.dirs=..., or the demo broker's --log-dir):
               filesystem, ext4 journal, data= mode, fast_commit, commit=,
               atime, XFS log

The broker is --pid, or the single kafka.Kafka JVM running. --experiment
shows the produce latency per filesystem of lockscope's own experiment
(the JSON of lockscope compare --format json, or a directory holding
compare.json; by default scripts/fs-experiment.sh's output, when it has run
here) and which run each log dir's filesystem is set up like. The exit
status is 1 when a check failed.

  sudo lockscope doctor
  sudo lockscope doctor --pid 4242 --json
  sudo lockscope doctor --no-jvm --log-dirs /var/lib/kafka --experiment fs-experiment/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := doctor.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				err = r.WriteJSON(cmd.OutOrStdout())
			} else {
				err = r.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if n := r.Count(doctor.Fail); n > 0 {
				return checksFailed(n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.PID, "pid", 0, "the broker JVM's pid (default: the single kafka.Kafka JVM running)")
	f.BoolVar(&o.NoJVM, "no-jvm", false, "check the host (and --log-dirs) only, no broker JVM")
	f.StringSliceVar(&o.LogDirs, "log-dirs", nil, "also check the filesystems of these directories")
	f.StringVar(&o.Experiment, "experiment", "", "a filesystem experiment to show: lockscope compare's JSON, or a directory holding "+doctor.ExperimentFile+" (default "+doctor.DefaultExperiment+" if present)")
	f.StringVar(&o.AsyncProfilerHome, "async-profiler", "", "async-profiler's install directory (default: $"+profiler.EnvHome+", asprof on PATH, usual places)")
	f.DurationVar(&o.Attach.ListenerTimeout, "listener-timeout", o.Attach.ListenerTimeout, "how long to wait for the JVM to open its attach socket")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "overall time limit")
	f.BoolVar(&o.SkipBPFLoad, "skip-bpf-load", false, "do not load the off-CPU BPF program to see whether it loads")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
