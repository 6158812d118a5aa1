package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/profiler"
)

func init() { commands = append(commands, newJVMCmd) }

// jvmOptions are the jvm command's flags.
type jvmOptions struct {
	attach     attach.Options
	asprofHome string
	profiler   profiler.Kind
	timeout    time.Duration
	threads    bool
	json       bool
}

func newJVMCmd() *cobra.Command {
	o := jvmOptions{attach: attach.DefaultOptions(), profiler: profiler.Auto}
	cmd := &cobra.Command{
		Use:   "jvm PID",
		Short: "Attach to a JVM and show what lockscope learns: version, flags, threads, profiler",
		Long: `jvm attaches to the JVM with the given pid through the HotSpot attach
mechanism (as jcmd does, without needing the JDK on the host, also into
containers) and prints what a capture depends on: the JDK version, the flags
that decide how complete stacks are, the profiler a capture would use, any
recordings already running, and the JVM's threads with their host thread ids
(the ids eBPF reports).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := strconv.Atoi(args[0])
			if err != nil || pid <= 0 {
				return fmt.Errorf("pid %q: want a positive process id", args[0])
			}
			if err := o.attach.Validate(); err != nil {
				return err
			}
			if o.timeout <= 0 {
				return fmt.Errorf("timeout %v: must be positive", o.timeout)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return runJVM(ctx, cmd.OutOrStdout(), pid, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.attach.ListenerTimeout, "listener-timeout", o.attach.ListenerTimeout, "how long to wait for the JVM to open its attach socket")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "overall time limit")
	f.StringVar(&o.asprofHome, "async-profiler", "", "async-profiler's install directory (default: $"+profiler.EnvHome+", asprof on PATH, /opt/async-profiler...)")
	f.Var(&o.profiler, "profiler", "the profiler a capture would use: auto prefers async-profiler, else the JDK Flight Recorder")
	f.BoolVar(&o.threads, "threads", false, "list every thread, not thread groups")
	f.BoolVar(&o.json, "json", false, "print JSON")
	return cmd
}

// jvmReport is the jvm command's output.
type jvmReport struct {
	PID        int          `json:"pid"`
	NSPID      int          `json:"nspid"`
	UID        uint32       `json:"uid"`
	GID        uint32       `json:"gid"`
	Info       *attach.Info `json:"info"`
	Profiler   string       `json:"profiler"`
	Recordings []string     `json:"recordings,omitempty"`
	Loaded     string       `json:"async_profiler_loaded,omitempty"`
	Leftovers  []string     `json:"leftover_recordings,omitempty"`
	Advice     []string     `json:"advice,omitempty"`
}

func runJVM(ctx context.Context, w io.Writer, pid int, o jvmOptions) error {
	vm, err := attach.Open(pid, o.attach)
	if err != nil {
		return err
	}
	info, err := vm.Info(ctx)
	if err != nil {
		return err
	}
	r := jvmReport{PID: vm.PID, NSPID: vm.NSPID, UID: vm.UID, GID: vm.GID, Info: info}

	if _, _, reason, err := profiler.Choose(profiler.Options{Profiler: o.profiler, AsyncProfilerHome: o.asprofHome}); err == nil {
		r.Profiler = reason
	} else {
		r.Profiler = "none usable: " + err.Error()
	}
	// JFR.check would start the Flight Recorder's machinery in a JVM that
	// never used it (a second of work and a few threads): ask only JVMs whose
	// recorder already runs.
	jfrRunning := slices.ContainsFunc(info.Threads, func(t attach.Thread) bool { return t.Name == "JFR Recorder Thread" })
	if jfrRunning {
		if out, err := vm.Jcmd(ctx, "JFR.check"); err == nil {
			for line := range strings.Lines(out) {
				if strings.HasPrefix(line, "Recording ") {
					r.Recordings = append(r.Recordings, strings.TrimSpace(line))
				}
			}
		}
	}
	if noFlightRecorder(info) && strings.HasPrefix(r.Profiler, "JDK Flight Recorder") {
		r.Profiler = "none: async-profiler not found and this JDK 8 (before 8u262) has no Flight Recorder"
	}
	if lib := loadedAsprof(pid); lib != "" {
		r.Loaded = lib
		if st, err := profiler.AsprofStatus(ctx, vm, lib); err == nil {
			r.Loaded += ": " + st
		}
	}
	if left, err := profiler.Leftovers(vm); err == nil {
		for _, l := range left {
			r.Leftovers = append(r.Leftovers, fmt.Sprintf("%s (%d bytes, %s; from the host: %s)", l.Path, l.Size, l.Mod.Format(time.RFC3339), l.Host))
		}
	}
	if f, ok := info.Flags["PreserveFramePointer"]; ok && f.Value != "true" {
		r.Advice = append(r.Advice, "-XX:+PreserveFramePointer lets eBPF walk user stacks through JIT-compiled Java frames (costs ~1-3% CPU)")
	}
	// A diagnostic flag: VM.flags lists it only when diagnostic options are
	// unlocked, and then it is off unless set.
	if f, ok := info.Flags["DebugNonSafepoints"]; !ok || f.Value != "true" {
		r.Advice = append(r.Advice, "-XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints makes async-profiler's inlined frames exact")
	}
	if info.Feature > 0 && info.Feature < 17 {
		r.Advice = append(r.Advice, "JDK 17+ writes the JIT symbol map (Compiler.perfmap) eBPF stacks are symbolized with; on older JDKs Java frames in kernel-side stacks stay addresses")
	}
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printJVM(w, r, o.threads)
}

// noFlightRecorder tells JDK 8 builds older than 8u262, the first OpenJDK 8
// with the Flight Recorder, from their VM.version "JDK 8.0_252".
func noFlightRecorder(info *attach.Info) bool {
	if info.Feature != 8 {
		return false
	}
	_, update, ok := strings.Cut(info.JDK, "_")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(strings.TrimRightFunc(update, func(r rune) bool { return r < '0' || r > '9' }))
	return err == nil && n < 262
}

// loadedAsprof returns the path, in the JVM's mount namespace, of an
// async-profiler library the JVM has loaded, or "".
func loadedAsprof(pid int) string {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "/"); i >= 0 && strings.HasSuffix(sc.Text(), "/libasyncProfiler.so") {
			return sc.Text()[i:]
		}
	}
	return ""
}

func printJVM(w io.Writer, r jvmReport, allThreads bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	info := r.Info
	pid := strconv.Itoa(r.PID)
	if r.NSPID != r.PID {
		pid += fmt.Sprintf(" (pid %d in its container)", r.NSPID)
	}
	fmt.Fprintf(tw, "pid\t%s, uid %d, gid %d\n", pid, r.UID, r.GID)
	fmt.Fprintf(tw, "jvm\t%s (JDK %s)\n", info.VM, info.JDK)
	for _, name := range attach.RelevantFlags {
		if f, ok := info.Flags[name]; ok {
			fmt.Fprintf(tw, "flag\t%s = %s\t(%s)\n", name, cmp.Or(f.Value, `""`), f.Origin)
		}
	}
	fmt.Fprintf(tw, "profiler\t%s\n", r.Profiler)
	if r.Loaded != "" {
		fmt.Fprintf(tw, "loaded\t%s\n", r.Loaded)
	}
	for _, rec := range r.Recordings {
		fmt.Fprintf(tw, "recording\t%s\n", rec)
	}
	for _, l := range r.Leftovers {
		fmt.Fprintf(tw, "left over\t%s\n", l)
	}
	for _, a := range r.Advice {
		fmt.Fprintf(tw, "advice\t%s\n", a)
	}
	java := 0
	for _, t := range info.Threads {
		if t.JavaID != 0 {
			java++
		}
	}
	fmt.Fprintf(tw, "threads\t%d (%d Java, %d JVM-internal)\n", len(info.Threads), java, len(info.Threads)-java)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if allThreads {
		fmt.Fprintln(tw, "HOST TID\tJVM TID\tSTATE\tNAME")
		for _, t := range info.Threads {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", t.HostTID, t.NID, t.State, t.Name)
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "COUNT\tTHREADS\tHOST TIDS")
	for _, g := range groupThreads(info.Threads) {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", len(g.tids), g.name, tidRange(g.tids))
	}
	return tw.Flush()
}

// A thread's number is its name's last run of digits: "request-handler-3",
// "GC Thread#1", "C2 CompilerThread0" (the 2 belongs to the name).
var threadNumber = regexp.MustCompile(`\d+$`)

type threadGroup struct {
	name string
	tids []int
}

// groupThreads folds numbered threads ("data-plane-kafka-request-handler-3")
// into one line per pattern, largest groups first.
func groupThreads(threads []attach.Thread) []threadGroup {
	byName := map[string]*threadGroup{}
	var groups []*threadGroup
	for _, t := range threads {
		name := threadNumber.ReplaceAllString(t.Name, "*")
		g := byName[name]
		if g == nil {
			g = &threadGroup{name: name}
			byName[name] = g
			groups = append(groups, g)
		}
		g.tids = append(g.tids, t.HostTID)
	}
	slices.SortStableFunc(groups, func(a, b *threadGroup) int { return len(b.tids) - len(a.tids) })
	out := make([]threadGroup, len(groups))
	for i, g := range groups {
		out[i] = *g
	}
	return out
}

// tidRange prints thread ids compactly: "101-104,110".
func tidRange(tids []int) string {
	s := slices.Clone(tids)
	slices.Sort(s)
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", s[i], s[j]))
		} else {
			parts = append(parts, strconv.Itoa(s[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
