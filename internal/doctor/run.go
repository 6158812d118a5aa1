package doctor

import (
	"context"
	"os"
	"strconv"
	"strings"

	"github.com/lockscope/lockscope/internal/kafkaconf"
)

// Run checks the host, the broker JVM (o.PID, or the single kafka.Kafka JVM
// found when o.PID is zero) and the filesystems of its log dirs and of
// o.LogDirs. Findings, failed ones included, are checks of the Report; an
// error means the options were unusable.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &Report{}

	pid := o.PID
	var found Report // the broker search's finding, shown after the host's
	if pid == 0 && !o.NoJVM {
		pid = findBroker(&found, "/proc")
	}
	target := 1 // the off-CPU program is loaded for the broker, else for init
	if pid > 0 {
		target = pid
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			target = 1
		}
	}
	hostChecks(ctx, r, o, target)
	asyncProfilerCheck(r, o.AsyncProfilerHome)
	r.Checks = append(r.Checks, found.Checks...)

	if pid > 0 {
		r.PID = pid
		args := jvmChecks(ctx, r, pid, o)
		if args != nil {
			brokerDirChecks(ctx, r, pid, args)
		}
	}
	if len(o.LogDirs) > 0 {
		r.LogDirs = append(r.LogDirs, o.LogDirs...)
		logDirChecks(ctx, r, 0, o.LogDirs, "--log-dirs")
	}
	switch {
	case o.Experiment != "":
		experimentChecks(r, o.Experiment, false)
	default:
		if _, err := os.Stat(DefaultExperiment); err == nil {
			experimentChecks(r, DefaultExperiment, true)
		}
	}
	return r, nil
}

// findBroker returns the pid of the only kafka.Kafka JVM, or 0 after
// saying why there is none to check.
func findBroker(r *Report, procDir string) int {
	pids, err := FindBrokers(procDir)
	switch {
	case err != nil:
		r.add(Warn, "broker", err.Error(), "give the broker's pid with --pid")
	case len(pids) == 1:
		return pids[0]
	case len(pids) == 0:
		r.add(Info, "broker", "no "+KafkaMainClass+" JVM runs here: JVM and log-dir checks skipped", "give the broker's pid with --pid, or its log dirs with --log-dirs")
	default:
		var s []string
		for _, p := range pids {
			s = append(s, strconv.Itoa(p))
		}
		r.add(Warn, "broker", "several "+KafkaMainClass+" JVMs run here (pids "+strings.Join(s, ", ")+"): JVM and log-dir checks skipped", "choose one with --pid")
	}
	return 0
}

// brokerDirChecks learns the broker's log dirs from its command line and
// checks their filesystems as the broker sees them.
func brokerDirChecks(ctx context.Context, r *Report, pid int, args []string) {
	if kafkaconf.MainIndex(args) < 0 {
		r.add(Info, "log dirs", "pid "+strconv.Itoa(pid)+" does not run "+KafkaMainClass+": log dirs unknown", "give them with --log-dirs")
		return
	}
	proc := "/proc/" + strconv.Itoa(pid)
	cwd, err := os.Readlink(proc + "/cwd")
	if err != nil {
		cwd = "/"
	}
	dirs, err := brokerLogDirs(args, cwd, func(path string) ([]byte, error) { return os.ReadFile(proc + "/root" + path) })
	if err != nil {
		r.add(Warn, "log dirs", err.Error(), "give the log dirs with --log-dirs")
		return
	}
	r.LogDirs = append(r.LogDirs, dirs.Dirs...)
	logDirChecks(ctx, r, pid, dirs.Dirs, dirs.Source)
}
