package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lockscope/lockscope/internal/offcpu"
)

// Capability bits of include/uapi/linux/capability.h.
const (
	capSysAdmin = 21
	capSyslog   = 34
	capPerfmon  = 38
	capBPF      = 39
)

// hostChecks are the checks of the machine, not of a broker: kernel
// support for eBPF, lockscope's privileges, tracefs and the sysctls that
// decide what profilers may see. target is the pid the off-CPU program is
// loaded for (the broker's, else init's).
func hostChecks(ctx context.Context, r *Report, o Options, target int) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		r.add(Info, "kernel", unix.ByteSliceToString(uts.Release[:])+" "+unix.ByteSliceToString(uts.Machine[:]), "")
	}

	if st, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		r.add(Pass, "btf", fmt.Sprintf("/sys/kernel/btf/vmlinux (%d KiB): the CO-RE off-CPU program can be relocated for this kernel", st.Size()>>10), "")
	} else {
		r.add(Fail, "btf", "/sys/kernel/btf/vmlinux: "+errText(err),
			"use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu, RHEL 8.2+ and Fedora kernels are)")
	}

	privileges(r)

	switch err := offcpu.CheckEnvironment(); {
	case err != nil:
		r.add(Fail, "off-cpu collector", err.Error(), "")
	case o.SkipBPFLoad:
		r.add(Info, "off-cpu collector", "not loaded (--skip-bpf-load); root and BTF are present", "")
	default:
		loadOffCPU(ctx, r, target)
	}

	tracefs(r)
	sysctls(r)
}

// privileges reads lockscope's effective capabilities.
func privileges(r *Report) {
	caps, err := effectiveCaps("/proc/self/status")
	if err != nil {
		r.add(Warn, "privileges", "reading /proc/self/status: "+err.Error(), "")
		return
	}
	r.Checks = append(r.Checks, judgePrivileges(os.Geteuid(), caps))
}

// judgePrivileges judges an effective uid and capability set.
func judgePrivileges(euid int, caps uint64) Check {
	var have, missing []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{capBPF, "CAP_BPF"}, {capPerfmon, "CAP_PERFMON"}, {capSysAdmin, "CAP_SYS_ADMIN"}} {
		if caps&(1<<c.bit) != 0 {
			have = append(have, c.name)
		} else {
			missing = append(missing, c.name)
		}
	}
	who := "uid " + strconv.Itoa(euid)
	if euid == 0 {
		who = "root"
	}
	with := " with " + strings.Join(have, ", ")
	if len(have) == 0 {
		with = " without capabilities"
	}
	switch {
	case euid == 0 && len(missing) == 0:
		return Check{Pass, "privileges", who + with, ""}
	case caps&(1<<capBPF) != 0 && caps&(1<<capPerfmon) != 0 || caps&(1<<capSysAdmin) != 0:
		// The capabilities suffice for the kernel, but lockscope also
		// attaches to JVMs of other users and reads their /proc files.
		return Check{Warn, "privileges", who + with + " (missing " + strings.Join(missing, ", ") + ")",
			"run lockscope as root (sudo): the off-CPU collector checks for root, and attaching to another user's JVM needs it"}
	default:
		return Check{Fail, "privileges", who + with + ": neither CAP_BPF with CAP_PERFMON nor CAP_SYS_ADMIN, so eBPF programs cannot be loaded",
			"run lockscope as root (sudo)"}
	}
}

// effectiveCaps parses the CapEff line of a status file.
func effectiveCaps(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line")
}

// loadOffCPU loads and attaches the off-CPU program for target and closes
// it at once: only the kernel's verifier can say whether it loads.
func loadOffCPU(ctx context.Context, r *Report, target int) {
	c, err := offcpu.Start(ctx, offcpu.Config{PIDs: []int{target}, RingBytes: 1 << 16, WakeupBytes: 1 << 12})
	if err != nil {
		r.add(Fail, "off-cpu collector", "loading the BPF program: "+err.Error(),
			"see the error; run lockscope as root on a kernel of 5.8 or later with BTF")
		return
	}
	prog := c.Program()
	if err := c.Close(); err != nil {
		r.add(Warn, "off-cpu collector", fmt.Sprintf("loaded (%s) but closing it failed: %v", prog, err), "")
		return
	}
	r.add(Pass, "off-cpu collector", fmt.Sprintf("the BPF program loads and attaches (%s flavour)", prog), "")
}

// tracefs checks that classic tracepoints (the filesystem tracer's ext4
// and jbd2 events, perf and bpftrace) can be used.
func tracefs(r *Report) { tracefsIn(r, "/sys/kernel/tracing", "/sys/kernel/debug/tracing") }

func tracefsIn(r *Report, dirs ...string) {
	for _, dir := range dirs {
		if ents, err := os.ReadDir(dir + "/events"); err == nil && len(ents) > 0 {
			r.add(Pass, "tracefs", dir+" is mounted ("+strconv.Itoa(len(ents))+" event systems)", "")
			return
		}
	}
	r.add(Warn, "tracefs", dirs[0]+" has no events: tracefs is not mounted, classic tracepoints (jbd2, ext4, perf, bpftrace) cannot be used",
		"mount -t tracefs nodev "+dirs[0])
}

// sysctls checks the kernel settings that decide what profilers may see.
func sysctls(r *Report) {
	if v, err := sysctlInt("kernel/perf_event_paranoid"); err != nil {
		r.add(Info, "perf_event_paranoid", errText(err), "")
	} else if v <= 1 {
		r.add(Pass, "perf_event_paranoid", strconv.Itoa(v)+": perf events with kernel stacks are open to every user", "")
	} else {
		// lockscope's own capture does not need perf events: async-profiler
		// runs in wall and lock modes and eBPF supplies kernel stacks.
		r.add(Info, "perf_event_paranoid", strconv.Itoa(v)+": a JVM not running as root cannot use async-profiler's perf-based modes (-e cpu, kernel frames); lockscope's wall/lock capture and eBPF are unaffected",
			"for async-profiler's cpu mode: sysctl -w kernel.perf_event_paranoid=1")
	}

	kptr, kerr := sysctlInt("kernel/kptr_restrict")
	kptrText := "kptr_restrict=" + strconv.Itoa(kptr)
	if kerr != nil {
		kptrText = "kptr_restrict unknown (" + errText(kerr) + ")"
	}
	switch readable, err := kallsymsReadable("/proc/kallsyms"); {
	case err != nil:
		r.add(Warn, "kptr_restrict", kptrText+"; reading /proc/kallsyms: "+errText(err), "run lockscope as root")
	case readable:
		r.add(Pass, "kptr_restrict", kptrText+": /proc/kallsyms shows kernel addresses, kernel stacks can be symbolized", "")
	default:
		r.add(Fail, "kptr_restrict", kptrText+": /proc/kallsyms shows only zero addresses to lockscope, kernel stacks cannot be symbolized",
			"sysctl -w kernel.kptr_restrict=0 (or 1 and run lockscope as root with CAP_SYSLOG)")
	}

	if v, err := sysctlInt("kernel/unprivileged_bpf_disabled"); err == nil {
		what := map[int]string{0: "unprivileged users may load BPF programs", 1: "only privileged users may load BPF programs (fixed until reboot)", 2: "only privileged users may load BPF programs"}[v]
		r.add(Info, "unprivileged_bpf_disabled", strings.TrimSpace(strconv.Itoa(v)+": "+what)+"; lockscope runs privileged, so this does not matter", "")
	}
}

func sysctlInt(name string) (int, error) {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// kallsymsReadable reports whether the first symbols of a kallsyms file
// have non-zero addresses: with kptr_restrict in force the kernel prints
// zeros to readers that may not see them.
func kallsymsReadable(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 0; n < 100 && sc.Scan(); n++ {
		addr, _, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		if len(bytes.Trim(addr, "0")) > 0 {
			return true, nil
		}
	}
	return false, sc.Err()
}

// errText is an error's text without Go's "stat " or "open " prefix when it
// is a *fs.PathError, whose path the caller already names.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
