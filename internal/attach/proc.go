package attach

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// procInfo is what /proc tells about a process before anything is sent to it.
type procInfo struct {
	uid, gid   uint32 // effective ids: HotSpot compares its peer with these
	nspid      int    // the pid in the innermost pid namespace (NStgid)
	sigQuitCgt bool   // the process catches SIGQUIT (a JVM without -Xrs does)
}

// parseStatus reads the effective uid and gid, the innermost namespace pid
// and whether SIGQUIT is caught from the text of /proc/PID/status. Kernels
// before 4.1 have no NStgid line; then the host pid is the namespace pid as
// far as lockscope can tell, which is right outside containers.
func parseStatus(status []byte, pid int) (procInfo, error) {
	info := procInfo{nspid: pid}
	var haveUID, haveGID bool
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		switch key {
		case "Uid", "Gid":
			// real, effective, saved, filesystem
			if len(f) < 2 {
				return info, fmt.Errorf("parsing %s line %q", key, val)
			}
			id, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return info, fmt.Errorf("parsing %s line: %w", key, err)
			}
			if key == "Uid" {
				info.uid, haveUID = uint32(id), true
			} else {
				info.gid, haveGID = uint32(id), true
			}
		case "NStgid":
			// Nested pid namespaces list outermost first; the JVM names its
			// files after the innermost one.
			if len(f) > 0 {
				n, err := strconv.Atoi(f[len(f)-1])
				if err != nil {
					return info, fmt.Errorf("parsing NStgid line: %w", err)
				}
				info.nspid = n
			}
		case "SigCgt":
			mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
			if err != nil {
				return info, fmt.Errorf("parsing SigCgt line: %w", err)
			}
			const sigquit = 3
			info.sigQuitCgt = mask&(1<<(sigquit-1)) != 0
		}
	}
	if !haveUID || !haveGID {
		return info, errors.New("no Uid or Gid line")
	}
	return info, nil
}

// jvmKind tells from /proc/PID/maps which VM, if any, the process runs.
func jvmKind(maps []byte) string {
	switch {
	case bytes.Contains(maps, []byte("/libjvm.so")):
		return "hotspot"
	case bytes.Contains(maps, []byte("/libj9vm")):
		return "openj9"
	}
	return ""
}

// attachDisabled reports whether the JVM's options turn the attach mechanism
// off, reading them in the order HotSpot applies them (the last one wins):
// JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS, the command line, _JAVA_OPTIONS.
// Options from -XX:Flags, -XX:VMOptionsFile or @argfiles are not seen; a JVM
// disabled that way shows up as a listener that never starts.
func attachDisabled(cmdline, environ []byte) bool {
	disabled := false
	for _, o := range jvmOptions(cmdline, environ) {
		switch o {
		case "-XX:+DisableAttachMechanism":
			disabled = true
		case "-XX:-DisableAttachMechanism":
			disabled = false
		}
	}
	return disabled
}

// jvmOptions lists the JVM's options from its environment and command line
// in the order HotSpot applies them.
func jvmOptions(cmdline, environ []byte) []string {
	env := map[string]string{}
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	var opts []string
	opts = append(opts, strings.Fields(env["JAVA_TOOL_OPTIONS"])...)
	opts = append(opts, strings.Fields(env["JDK_JAVA_OPTIONS"])...)
	for _, a := range bytes.Split(cmdline, []byte{0}) {
		opts = append(opts, string(a))
	}
	return append(opts, strings.Fields(env["_JAVA_OPTIONS"])...)
}

// inspect gathers procInfo for pid and refuses processes lockscope must not
// attach to: those that are gone, are not HotSpot JVMs or have attach
// disabled.
func inspect(pid int) (procInfo, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if errors.Is(err, fs.ErrNotExist) {
		return procInfo{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return procInfo{}, fmt.Errorf("reading process status: %w", err)
	}
	info, err := parseStatus(status, pid)
	if err != nil {
		return procInfo{}, fmt.Errorf("reading %s/status: %w", dir, err)
	}
	maps, err := os.ReadFile(dir + "/maps")
	if errors.Is(err, fs.ErrPermission) {
		return procInfo{}, fmt.Errorf("pid %d: reading its memory maps: %w: run lockscope as root or as the JVM's user (uid %d)", pid, ErrPermission, info.uid)
	}
	if err != nil {
		return procInfo{}, fmt.Errorf("reading %s/maps: %w", dir, err)
	}
	switch jvmKind(maps) {
	case "hotspot":
	case "openj9":
		return procInfo{}, fmt.Errorf("pid %d: %w: it is an OpenJ9 JVM, whose attach protocol lockscope does not speak", pid, ErrNotJVM)
	default:
		comm, _ := os.ReadFile(dir + "/comm")
		return procInfo{}, fmt.Errorf("pid %d (%s): %w: libjvm.so is not mapped; give the pid of the java process (jps or pgrep java lists them)", pid, strings.TrimSpace(string(comm)), ErrNotJVM)
	}
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil {
		return procInfo{}, fmt.Errorf("reading %s/cmdline: %w", dir, err)
	}
	// The environment is readable by the JVM's user and root only; without it
	// the listener's timeout still reports a disabled mechanism.
	environ, _ := os.ReadFile(dir + "/environ")
	if attachDisabled(cmdline, environ) {
		return procInfo{}, fmt.Errorf("pid %d: %w: the JVM runs with -XX:+DisableAttachMechanism; restart it without that option, or load async-profiler at startup with -agentpath", pid, ErrAttachDisabled)
	}
	return info, nil
}
