package cluster

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Which broker the latency source's requests were sent to is read from
// the processes: the one with the request log open, or the one listening
// on the sniffed port. A source that is neither (a client's CSV, a pcap)
// names no broker; then none is the leader and no follower is blamed.

// servedBy returns the pid among pids whose requests the latency source
// holds, or 0.
func servedBy(source string, pids []int) int {
	kind, arg, _ := strings.Cut(source, ":")
	var match func(pid int) bool
	switch kind {
	case "requestlog":
		want, err := filepath.Abs(arg)
		if err != nil {
			return 0
		}
		if r, err := filepath.EvalSymlinks(want); err == nil {
			want = r
		}
		match = func(pid int) bool { return hasFD(pid, func(target string) bool { return target == want }) }
	case "kafka":
		ports := strings.Split(arg, ",")
		if len(ports) != 1 {
			return 0 // several brokers' requests
		}
		port, err := strconv.Atoi(ports[0])
		if err != nil {
			return 0
		}
		inodes := listening(port)
		match = func(pid int) bool {
			return hasFD(pid, func(target string) bool { return inodes[target] })
		}
	default:
		return 0
	}
	found := 0
	for _, pid := range pids {
		if match(pid) {
			if found != 0 {
				return 0 // ambiguous
			}
			found = pid
		}
	}
	return found
}

// hasFD reports whether one of pid's open files' link targets matches.
func hasFD(pid int, match func(target string) bool) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && match(t) {
			return true
		}
	}
	return false
}

// listening returns the "socket:[INODE]" links of the TCP sockets
// listening on port (IPv4 and IPv6).
func listening(port int) map[string]bool {
	out := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // TCP_LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				out["socket:["+fs[9]+"]"] = true
			}
		}
		fh.Close()
	}
	return out
}
