package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/kafkaconf"
	"github.com/lockscope/lockscope/internal/profiler"
)

// KafkaMainClass is the main class of a Kafka broker (and of lockscope's
// demo broker, which is named after it).
const KafkaMainClass = kafkaconf.MainClass

// FindBrokers lists the pids of the processes under procDir (normally
// /proc) whose command line runs KafkaMainClass, lockscope's own excepted.
func FindBrokers(procDir string) ([]int, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "cmdline"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		if kafkaconf.MainIndex(splitCmdline(b)) >= 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// splitCmdline splits a /proc/PID/cmdline into its arguments.
func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// jvmChecks attaches to the JVM pid and checks what a capture depends on.
// It returns the JVM's command line (nil when the process is unreadable)
// for the log-dir checks.
func jvmChecks(ctx context.Context, r *Report, pid int, o Options) []string {
	dir := "/proc/" + strconv.Itoa(pid)
	cmdline, cerr := os.ReadFile(dir + "/cmdline")
	args := splitCmdline(cmdline)
	what := "pid " + strconv.Itoa(pid)
	if comm, err := os.ReadFile(dir + "/comm"); err == nil {
		what += " (" + strings.TrimSpace(string(comm)) + ")"
	}

	vm, err := attach.Open(pid, o.Attach)
	switch {
	case errors.Is(err, attach.ErrNoProcess) || errors.Is(cerr, os.ErrNotExist):
		r.add(Fail, "jvm", "pid "+strconv.Itoa(pid)+": no such process",
			"give the broker's pid (pgrep -f kafka.Kafka), or leave --pid out to find it")
		return nil
	case errors.Is(err, attach.ErrNotJVM):
		// attach's error names the process and why; its advice is ours.
		msg, _, _ := strings.Cut(err.Error(), "; give the pid")
		r.add(Fail, "jvm", msg, "give the pid of the broker's java process (pgrep -f kafka.Kafka)")
		return nil
	case errors.Is(err, attach.ErrAttachDisabled):
		r.add(Pass, "jvm", what+" is a HotSpot JVM", "")
		r.add(Fail, "attach", "the JVM runs with -XX:+DisableAttachMechanism: lockscope cannot start a profiler or read its flags",
			"restart the broker without -XX:+DisableAttachMechanism (check KAFKA_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, JAVA_TOOL_OPTIONS), or load async-profiler at start-up with -agentpath")
		// The flags can still be read where they were set: the options.
		flagChecks(r, &attach.Info{Flags: procOptionFlags(pid, args)})
		return args
	case err != nil:
		r.add(Fail, "attach", what+": "+err.Error(), "")
		return args
	}
	r.add(Pass, "jvm", what+" is a HotSpot JVM", "")

	info, err := vm.Info(ctx)
	if err != nil {
		// attach's error says the likely causes; they are the fix.
		detail, fix := err.Error(), ""
		if i := strings.Index(detail, ": the JVM may"); i >= 0 {
			detail, fix = detail[:i], detail[i+2:]
		}
		r.add(Fail, "attach", "attaching as uid "+strconv.Itoa(int(vm.UID))+": "+detail, fix)
		flagChecks(r, &attach.Info{Flags: procOptionFlags(pid, args)})
		return args
	}
	r.add(Pass, "attach", fmt.Sprintf("%s (JDK %s), %d threads, attached as uid %d", info.VM, info.JDK, len(info.Threads), vm.UID), "")
	flagChecks(r, info)

	// help lists the JFR commands when the JVM has the Flight Recorder;
	// JFR.check would start its machinery in a JVM that never used it.
	if help, err := vm.Jcmd(ctx, "help"); err != nil {
		r.add(Warn, "jfr", "listing the JVM's diagnostic commands: "+err.Error(), "")
	} else if strings.Contains(help, "JFR.start") {
		r.add(Pass, "jfr", "the JDK Flight Recorder is available (lockscope's fallback when async-profiler is not installed)", "")
	} else {
		r.add(Warn, "jfr", "the JVM has no Flight Recorder commands (JDK 8 before 8u262, or a runtime image without jdk.jfr): without async-profiler there is nothing to record Java stacks with",
			"install async-profiler, or run the broker on JDK 11+ with the jdk.jfr module")
	}

	if left, err := profiler.Leftovers(vm); err == nil && len(left) > 0 {
		var total int64
		var names []string
		for i, l := range left {
			total += l.Size
			if i < 3 {
				names = append(names, l.Host)
			}
		}
		if len(left) > 3 {
			names = append(names, "...")
		}
		r.add(Warn, "leftover recordings", fmt.Sprintf("%d lockscope recordings (%d KiB) in the JVM's /tmp: %s: captures died before collecting them, or one is running",
			len(left), total>>10, strings.Join(names, ", ")),
			"lockscope jvm "+strconv.Itoa(pid)+" lists them; copy what you need and delete the rest")
	}
	return args
}

// optionFlags reads the flags doctor judges from a JVM's options, in the
// order HotSpot applies them (the last wins): JAVA_TOOL_OPTIONS,
// JDK_JAVA_OPTIONS, the command line up to the main class (with the
// launcher's @argfiles), the -XX:VMOptionsFile and -XX:Flags files,
// _JAVA_OPTIONS. Files are read with readFile, relative paths against cwd.
// Flags set nowhere get their defaults, marked so. It is the fallback when
// the JVM cannot be asked.
func optionFlags(args []string, environ []byte, cwd string, readFile func(string) ([]byte, error)) map[string]attach.Flag {
	env := map[string]string{}
	for _, kv := range strings.Split(string(environ), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if i := kafkaconf.MainIndex(args); i > 0 {
		args = args[:i]
	}
	if len(args) > 0 {
		args = args[1:]
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cwd, p)
	}
	read := func(p string) string {
		if readFile == nil {
			return ""
		}
		b, err := readFile(abs(p))
		if err != nil || len(b) > 1<<20 {
			return ""
		}
		return string(b)
	}
	var opts []string
	opts = append(opts, strings.Fields(env["JAVA_TOOL_OPTIONS"])...)
	opts = append(opts, strings.Fields(env["JDK_JAVA_OPTIONS"])...)
	var flagsFile string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "@"):
			opts = append(opts, strings.Fields(read(a[1:]))...)
		case strings.HasPrefix(a, "-XX:VMOptionsFile="):
			opts = append(opts, a)
			opts = append(opts, strings.Fields(read(strings.TrimPrefix(a, "-XX:VMOptionsFile=")))...)
		case strings.HasPrefix(a, "-XX:Flags="):
			flagsFile = strings.TrimPrefix(a, "-XX:Flags=")
		default:
			opts = append(opts, a)
		}
	}
	// A flags file holds one flag a line as "+Name", "-Name" or "Name=value";
	// HotSpot applies it before the command line.
	var fileOpts []string
	for _, l := range strings.Fields(read(flagsFile)) {
		if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
			fileOpts = append(fileOpts, "-XX:"+l)
		}
	}
	opts = append(fileOpts, opts...)
	opts = append(opts, strings.Fields(env["_JAVA_OPTIONS"])...)

	set := map[string]string{}
	for _, o := range opts {
		if rest, ok := strings.CutPrefix(o, "-XX:+"); ok {
			set[rest] = "true"
		} else if rest, ok := strings.CutPrefix(o, "-XX:-"); ok {
			set[rest] = "false"
		}
	}
	flag := func(name string) attach.Flag {
		if v, ok := set[name]; ok {
			return attach.Flag{Type: "bool", Value: v, Origin: "from the JVM's options"}
		}
		return attach.Flag{Type: "bool", Value: "false", Origin: optionDefault}
	}
	flags := map[string]attach.Flag{}
	for _, name := range []string{"PreserveFramePointer", "DisableAttachMechanism", "UnlockDiagnosticVMOptions"} {
		flags[name] = flag(name)
	}
	// VM.flags shows diagnostic flags only when they are unlocked.
	if flags["UnlockDiagnosticVMOptions"].Value == "true" {
		flags["DebugNonSafepoints"] = flag("DebugNonSafepoints")
	}
	return flags
}

// optionDefault is the origin of a flag optionFlags found set nowhere.
const optionDefault = "default, per the JVM's options"

// procOptionFlags is optionFlags for the running process pid.
func procOptionFlags(pid int, args []string) map[string]attach.Flag {
	proc := "/proc/" + strconv.Itoa(pid)
	environ, _ := os.ReadFile(proc + "/environ")
	cwd, err := os.Readlink(proc + "/cwd")
	if err != nil {
		cwd = "/"
	}
	return optionFlags(args, environ, cwd, func(p string) ([]byte, error) { return os.ReadFile(proc + "/root" + p) })
}

// flagChecks judges the JVM flags that decide stack quality.
func flagChecks(r *Report, info *attach.Info) {
	flag := func(name string) (attach.Flag, bool) { f, ok := info.Flags[name]; return f, ok }

	switch f, ok := flag("PreserveFramePointer"); {
	case !ok:
		r.add(Info, "PreserveFramePointer", "this JVM has no such flag (before JDK 8u60)", "")
	case f.Value == "true":
		r.add(Pass, "PreserveFramePointer", "true ("+f.Origin+"): eBPF user stacks walk through JIT-compiled Java frames", "")
	default:
		r.add(Warn, "PreserveFramePointer", "false ("+f.Origin+"): eBPF user stacks stop at the first JIT-compiled Java frame; Java frames come from the profiler only",
			"add -XX:+PreserveFramePointer to KAFKA_JVM_PERFORMANCE_OPTS and restart (costs about 1-3% CPU)")
	}

	// A diagnostic flag: VM.flags -all lists it only when diagnostic
	// options are unlocked.
	switch f, ok := flag("DebugNonSafepoints"); {
	case ok && f.Value == "true":
		r.add(Pass, "DebugNonSafepoints", "true ("+f.Origin+"): async-profiler places samples in inlined methods exactly", "")
	default:
		state := "false"
		if !ok {
			state = "not shown (UnlockDiagnosticVMOptions is off)"
		}
		r.add(Warn, "DebugNonSafepoints", state+": async-profiler attached at run time gets exact inlined frames only for methods compiled after it attached",
			"add -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints to the broker's JVM options")
	}

	if info.Feature > 0 && info.Feature < 17 {
		r.add(Warn, "perf map", fmt.Sprintf("JDK %d: the JVM cannot write its JIT symbol map on request (Compiler.perfmap is JDK 17+), so JIT-compiled Java frames in eBPF stacks stay addresses", info.Feature),
			"run the broker on JDK 17 or later (Kafka supports 17), or start it with a perf-map agent")
	}

	switch f, ok := flag("DisableAttachMechanism"); {
	case ok && f.Value == "true":
		r.add(Fail, "DisableAttachMechanism", "true ("+f.Origin+")", "remove -XX:+DisableAttachMechanism")
	case f.Origin == optionDefault:
		r.add(Info, "DisableAttachMechanism", "not set in the JVM's options that lockscope can read", "")
	default:
		r.add(Pass, "DisableAttachMechanism", "false: profilers can be started without a restart", "")
	}
}

// asyncProfilerCheck says whether and which async-profiler a capture would
// load.
func asyncProfilerCheck(r *Report, home string) {
	in, err := profiler.Locate(home)
	if err != nil {
		r.add(Warn, "async-profiler", "not found: captures fall back to the JDK Flight Recorder, which has no wall-clock sampling",
			strings.TrimPrefix(err.Error(), profiler.ErrNoAsyncProfiler.Error()+": "))
		return
	}
	v := in.Version
	if v == "" {
		v = "unknown version"
	}
	r.add(Pass, "async-profiler", fmt.Sprintf("%s at %s (found by %s)", v, in.Lib, in.From), "")
}
