package attach

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Info is what lockscope learns about a JVM by attaching: enough to choose a
// profiler, judge stack quality and name the threads eBPF will see.
type Info struct {
	VM      string `json:"vm"`      // e.g. "OpenJDK 64-Bit Server VM version 17.0.15+6-Debian-1deb12u1"
	JDK     string `json:"jdk"`     // e.g. "17.0.15"
	Feature int    `json:"feature"` // the JDK feature release, e.g. 17 (8 for 1.8)
	// Flags holds the flags lockscope cares about, by name, with their
	// values as HotSpot prints them; a flag this JVM lacks is absent.
	Flags   map[string]Flag `json:"flags"`
	Threads []Thread        `json:"threads"`
}

// Flag is one VM flag from VM.flags -all.
type Flag struct {
	Type   string `json:"type"`
	Value  string `json:"value"`
	Origin string `json:"origin"` // "default", "command line", "ergonomic", ...
}

// Thread is one thread of a thread dump, with its ids in both pid namespaces.
type Thread struct {
	Name    string `json:"name"`
	JavaID  int    `json:"java_id,omitempty"` // the "#N" of Java threads, 0 for VM-internal ones
	Daemon  bool   `json:"daemon,omitempty"`  // daemon Java thread
	NID     int    `json:"nid"`               // OS thread id as the JVM sees it (its pid namespace)
	HostTID int    `json:"host_tid"`          // OS thread id on the host, what eBPF reports; 0 if gone
	State   string `json:"state"`
}

// RelevantFlags are the flags Info keeps: they decide how complete stacks
// are (frame pointers for eBPF user stacks, debug info between safepoints
// for async-profiler) and whether attaching works at all.
var RelevantFlags = []string{
	"PreserveFramePointer", "DebugNonSafepoints", "DisableAttachMechanism",
	"UnlockDiagnosticVMOptions", "UsePerfData", "PerfDisableSharedMem",
	"ReduceSignalUsage", "UseContainerSupport", "ActiveProcessorCount",
}

// Version runs VM.version in the JVM; the Info it returns has only the
// version fields set.
func (vm *VM) Version(ctx context.Context) (*Info, error) {
	out, err := vm.Jcmd(ctx, "VM.version")
	if err != nil {
		return nil, fmt.Errorf("running VM.version: %w", err)
	}
	return parseVersion(out), nil
}

// Info runs VM.version, VM.flags -all and Thread.print in the JVM.
func (vm *VM) Info(ctx context.Context) (*Info, error) {
	info, err := vm.Version(ctx)
	if err != nil {
		return nil, err
	}
	flags, err := vm.Jcmd(ctx, "VM.flags -all")
	if err != nil {
		return nil, fmt.Errorf("running VM.flags: %w", err)
	}
	all := parseFlags(flags)
	info.Flags = map[string]Flag{}
	for _, name := range RelevantFlags {
		if f, ok := all[name]; ok {
			info.Flags[name] = f
		}
	}
	dump, err := vm.Jcmd(ctx, "Thread.print")
	if err != nil {
		return nil, fmt.Errorf("running Thread.print: %w", err)
	}
	info.Threads = parseThreads(dump)
	hostTIDs, err := ThreadIDs(vm.PID)
	if err != nil {
		return nil, err
	}
	for i := range info.Threads {
		info.Threads[i].HostTID = hostTIDs[info.Threads[i].NID]
	}
	return info, nil
}

// parseVersion reads the output of VM.version:
//
//	OpenJDK 64-Bit Server VM version 17.0.15+6-Debian-1deb12u1
//	JDK 17.0.15
func parseVersion(out string) *Info {
	info := &Info{}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, " VM version "):
			info.VM = line
		case strings.HasPrefix(line, "JDK "):
			info.JDK = strings.TrimPrefix(line, "JDK ")
		}
	}
	v := info.JDK
	if v == "" { // JDK 8 prints no JDK line; its VM version is e.g. 25.402-b06
		if _, after, ok := strings.Cut(info.VM, " version "); ok && strings.HasPrefix(after, "25.") {
			info.Feature = 8
		}
		return info
	}
	v = strings.TrimPrefix(v, "1.")
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	info.Feature, _ = strconv.Atoi(v[:end])
	return info
}

// parseFlags reads VM.flags -all, whose lines look like
//
//	bool PreserveFramePointer        = false        {pd product} {default}
//	ccstr OnError                    =              {product} {default}
//
// (JDK 8 marks changed flags with ":=" and prints no origin).
func parseFlags(out string) map[string]Flag {
	flags := map[string]Flag{}
	for line := range strings.Lines(out) {
		left, right, ok := strings.Cut(line, "= ")
		if !ok {
			continue
		}
		lf := strings.Fields(strings.TrimSuffix(strings.TrimSpace(left), ":"))
		if len(lf) != 2 {
			continue
		}
		value, attrs, _ := strings.Cut(right, "{")
		f := Flag{Type: lf[0], Value: strings.TrimSpace(value)}
		switch i := strings.LastIndex(attrs, "{"); {
		case i >= 0: // JDK 9+: {kind} {origin}
			f.Origin = strings.TrimSuffix(strings.TrimSpace(attrs[i+1:]), "}")
		case strings.HasSuffix(strings.TrimSpace(left), ":"): // JDK 8: {kind} only
			f.Origin = "set"
		default:
			f.Origin = "default"
		}
		flags[lf[1]] = f
	}
	return flags
}

// parseThreads reads the thread headers of Thread.print:
//
//	"main" #1 prio=5 os_prio=0 cpu=96.1ms elapsed=3.2s tid=0x7f.. nid=0x1a2b runnable  [0x7f..]
//	   java.lang.Thread.State: RUNNABLE
//	"VM Thread" os_prio=0 cpu=2.1ms elapsed=3.2s tid=0x7f.. nid=0x1a2c runnable
//
// nid is hexadecimal up to JDK 18 and decimal from JDK 19.
func parseThreads(out string) []Thread {
	var threads []Thread
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "   java.lang.Thread.State: ") && len(threads) > 0 {
			threads[len(threads)-1].State = strings.TrimPrefix(line, "   java.lang.Thread.State: ")
			continue
		}
		if !strings.HasPrefix(line, "\"") {
			continue
		}
		end := strings.LastIndex(line, "\" ")
		if end <= 0 {
			continue
		}
		t := Thread{Name: line[1:end]}
		nid := false
		for _, f := range strings.Fields(line[end+2:]) {
			switch {
			case strings.HasPrefix(f, "#") && t.JavaID == 0 && !nid:
				t.JavaID, _ = strconv.Atoi(f[1:])
			case f == "daemon":
				t.Daemon = true
			case strings.HasPrefix(f, "nid="):
				v := f[len("nid="):]
				var n int64
				if strings.HasPrefix(v, "0x") {
					n, _ = strconv.ParseInt(v[2:], 16, 64)
				} else {
					n, _ = strconv.ParseInt(v, 10, 64)
				}
				t.NID, nid = int(n), true
			case nid && t.State == "" && !strings.HasPrefix(f, "["):
				t.State = f
			}
		}
		if nid {
			threads = append(threads, t)
		}
	}
	return threads
}

// ThreadIDs maps the thread ids of process pid as its own pid namespace
// numbers them (what the JVM prints and async-profiler records) to host
// thread ids (what eBPF reports). Outside containers the map is the
// identity.
func ThreadIDs(pid int) (map[int]int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing threads of pid %d: %w", pid, err)
	}
	ids := make(map[int]int, len(entries))
	for _, e := range entries {
		host, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns, err := nsTID(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		ids[ns] = host
	}
	return ids, nil
}

// nsTID returns the innermost NSpid of a thread's status file.
func nsTID(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				return strconv.Atoi(fs[len(fs)-1])
			}
		}
	}
	return 0, fmt.Errorf("%s: no NSpid line", path)
}
