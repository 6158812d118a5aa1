package verdict

import (
	"fmt"
	"strings"
	"time"
)

// Name names a finding's cause in a few words, the same in every capture
// that has it (for comparisons).
func (f *Finding) Name() string { return string(f.Kind) + ": " + f.short() }

// short names a finding's cause in a few words.
func (f *Finding) short() string {
	switch f.Kind {
	case GC:
		return "stop-the-world pauses"
	case CPU:
		return "waiting for a CPU"
	case Throttling:
		return "cgroup CPU throttling"
	}
	who := f.Thread + " thread"
	if f.Thread == "" {
		who = "an unidentified holder"
	}
	return who + " in " + f.path()
}

// sentence is what an operator would write after reading the evidence.
func sentence(f *Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f%% of the slow windows' excess waiting: ", 100*f.Share)
	waiters := strings.Join(f.Waiters, ", ")
	self := f.Via == "" || len(f.Waiters) == 0
	through := "directly"
	switch {
	case strings.HasPrefix(f.Via, "lock"):
		through = "on the " + lockName(f.Via)
	case f.Via != "":
		through = "through " + f.Via
	}
	switch f.Kind {
	case Filesystem:
		if self {
			fmt.Fprintf(&b, "%s threads waited for the filesystem in %s", f.Thread, f.path())
		} else {
			fmt.Fprintf(&b, "the %s thread waited for the filesystem in %s", f.Thread, f.path())
		}
		if f.What != "" {
			fmt.Fprintf(&b, " on %s", f.What)
		}
		if !self {
			fmt.Fprintf(&b, "; %s threads waited for it %s", waiters, through)
		}
	case GC:
		if f.Pauses == 0 {
			b.WriteString("stop-the-world pauses stopped every Java thread (seen as the VM thread waking them: the recording has no GC or safepoint events; with async-profiler, add jfrsync)")
			break
		}
		fmt.Fprintf(&b, "stop-the-world pauses stopped every Java thread (%d in the slow windows, the longest %v: %s)",
			f.Pauses, f.Worst.Round(100*time.Microsecond), f.What)
	case CPU:
		fmt.Fprintf(&b, "threads were runnable but not running, waiting for a CPU (%s)", waiters)
		if f.What != "" {
			fmt.Fprintf(&b, "; %s", f.What)
		}
	case Throttling:
		fmt.Fprintf(&b, "cgroup CPU throttling: %s threads were runnable while the cgroup had used its CPU quota", waiters)
		if f.What != "" {
			fmt.Fprintf(&b, "; %s", f.What)
		}
	case Lock:
		lock := lockName(f.Via)
		if f.Thread == "" {
			fmt.Fprintf(&b, "%s threads waited for the %s; its holder is not identified", waiters, lock)
			break
		}
		fmt.Fprintf(&b, "the %s thread %s while holding the %s; %s threads waited for that lock", f.Thread, f.activity(), lock, waiters)
	case Handoff:
		fmt.Fprintf(&b, "the %s thread %s while %s threads waited for it %s", f.Thread, f.activity(), waiters, through)
	case Socket:
		fmt.Fprintf(&b, "the %s thread waited for a socket's send buffer in %s", f.Thread, f.path())
	case Reclaim:
		fmt.Fprintf(&b, "the %s thread waited for memory (direct reclaim) in %s", f.Thread, f.path())
	default:
		fmt.Fprintf(&b, "%s threads %s", f.Thread, f.activity())
	}
	if (f.Kind == Socket || f.Kind == Reclaim) && !self {
		fmt.Fprintf(&b, "; %s threads waited for it %s", waiters, through)
	}
	return b.String()
}

// path is the activity's frames: Java (and the application's frame), the
// system call, the kernel function; futex frames say nothing a Java wait
// does not.
func (f *Finding) path() string {
	var parts []string
	if f.Java != "" {
		j := shortFrame(f.Java)
		if f.App != "" {
			j += " (" + shortFrame(f.App) + ")"
		}
		parts = append(parts, j)
	}
	if !futex(f.Kernel) {
		if f.Syscall != "" {
			parts = append(parts, f.Syscall)
		}
		if f.Kernel != "" && f.Kernel != "on CPU" {
			parts = append(parts, f.Kernel)
		}
	}
	if len(parts) == 0 {
		return "an unknown wait"
	}
	return strings.Join(parts, " → ")
}

// activity says what a thread did: ran, slept, waited.
func (f *Finding) activity() string {
	switch {
	case f.Kernel == "on CPU":
		if f.Java == "" {
			return "was running (not sampled)"
		}
		return "was running " + f.path()
	case strings.Contains(f.Java, "Thread.sleep") || strings.Contains(f.Java, "TimeUnit.sleep"):
		return "slept in " + f.path()
	}
	return "waited in " + f.path()
}

func futex(k string) bool {
	return strings.HasPrefix(k, "futex") || strings.HasPrefix(k, "__futex") || k == "do_futex"
}

// lockName spells a lock mechanism ("lock java.lang.Object in
// kafka.log.UnifiedLog.append") for a sentence.
func lockName(via string) string {
	via = strings.TrimSpace(strings.TrimPrefix(via, "lock"))
	if via == "" {
		return "lock"
	}
	class, site, ok := strings.Cut(via, " in ")
	if !ok {
		return "lock (" + class + ")"
	}
	if class == "" {
		return "lock taken in " + shortFrame(site)
	}
	return "lock (" + class + ") taken in " + shortFrame(site)
}

// evidence lists the facts behind a finding, beyond its sentence.
func evidence(f *finding, in Input) []string {
	out := []string{fmt.Sprintf("%.3f thread-s/s of waiting in the slow windows vs %.3f outside; excess %v over %v of slow windows; shifted windows caught as much in %.1f%% of %d shifts",
		f.SlowRate, f.BaseRate, f.Excess.Round(time.Millisecond), in.SlowTime.Round(time.Millisecond), 100*f.P, shifts)}
	switch f.Kind {
	case Filesystem:
		if len(f.kernels) > 1 {
			var parts []string
			for _, k := range topWaiters(f.kernels, 4) {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(f.kernels[k])/float64(max(f.slow, 1))))
			}
			out = append(out, "waited in the kernel in "+strings.Join(parts, ", ")+" of the slow windows' time")
		}
		if in.FS != nil {
			for _, d := range in.FS.Devices {
				out = append(out, "filesystem: "+d)
			}
			out = append(out, in.FS.Journal...)
			if len(in.FS.Devices) == 1 {
				f.What = in.FS.Devices[0]
			}
		}
	case CPU, Throttling:
		if c := in.CPU; c != nil {
			if c.Cgroup != "" {
				q := "no quota"
				if c.Quota > 0 {
					q = fmt.Sprintf("quota %.2f CPUs", c.Quota)
				}
				out = append(out, fmt.Sprintf("cgroup %s (%s): throttled %.0f ms/s in the slow windows vs %.0f ms/s outside",
					c.Cgroup, q, 1000*c.ThrottledSlow, 1000*c.ThrottledBase))
				if f.Kind == Throttling {
					f.What = fmt.Sprintf("the cgroup %s (%s) was throttled %.0f ms per second in the slow windows vs %.0f outside",
						c.Cgroup, q, 1000*c.ThrottledSlow, 1000*c.ThrottledBase)
				}
			}
			if f.Kind == CPU {
				f.What = fmt.Sprintf("the host's %d CPUs were %.0f%% busy in the slow windows vs %.0f%% outside", c.CPUs, 100*c.HostBusySlow, 100*c.HostBusyBase)
			}
			out = append(out, fmt.Sprintf("host CPU busy %.0f%% in the slow windows vs %.0f%% outside (%d CPUs); the target used %.2f CPUs vs %.2f",
				100*c.HostBusySlow, 100*c.HostBusyBase, c.CPUs, c.TargetSlow, c.TargetBase))
		}
	case GC:
		if f.Pauses > 0 {
			out = append(out, fmt.Sprintf("%d stop-the-world pauses in the slow windows, the longest %v (%s)", f.Pauses, f.Worst.Round(100*time.Microsecond), f.What))
		}
	}
	return out
}

// shortFrame cuts a Java frame's package: "kafka.log.UnifiedLog.append"
// becomes "UnifiedLog.append".
func shortFrame(n string) string {
	i := strings.LastIndexByte(n, '.')
	if i < 0 {
		return n
	}
	if j := strings.LastIndexByte(n[:i], '.'); j >= 0 {
		return n[j+1:]
	}
	return n
}
