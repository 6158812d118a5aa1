package serve

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrNoTarget: the broker JVM was not found (not running, or the pid file
// or match is wrong).
var ErrNoTarget = errors.New("broker JVM not found")

// findTarget returns the broker's pid, found afresh: brokers restart.
func findTarget(t Target) (int, error) {
	if t.PIDFile != "" {
		b, err := os.ReadFile(t.PIDFile)
		if err != nil {
			return 0, fmt.Errorf("%w: reading target.pid_file: %v", ErrNoTarget, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("%w: target.pid_file %s holds %q, not a pid", ErrNoTarget, t.PIDFile, bytes.TrimSpace(b))
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return 0, fmt.Errorf("%w: pid %d from %s is not running (stale pid file?)", ErrNoTarget, pid, t.PIDFile)
		}
		return pid, nil
	}
	pids, err := matchProcesses("/proc", t.Match, os.Getpid())
	if err != nil {
		return 0, err
	}
	switch len(pids) {
	case 0:
		return 0, fmt.Errorf("%w: no process matches target.match %q", ErrNoTarget, t.Match)
	case 1:
		return pids[0], nil
	}
	return 0, fmt.Errorf("%w: %d processes match target.match %q (pids %v): make it narrower or use target.pid_file", ErrNoTarget, len(pids), t.Match, pids)
}

// matchProcesses scans proc's */cmdline for processes matching match (see
// Target.Match), leaving out self.
func matchProcesses(proc, match string, self int) ([]int, error) {
	var re *regexp.Regexp
	if m, ok := strings.CutPrefix(match, "=~"); ok {
		var err error
		if re, err = regexp.Compile(m); err != nil {
			return nil, fmt.Errorf("target.match: %w", err)
		}
	}
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // exited meanwhile, or a kernel thread
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if re != nil {
			if re.MatchString(strings.Join(args, " ")) {
				pids = append(pids, pid)
			}
			continue
		}
		for _, a := range args[1:] {
			if a == match {
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids, nil
}
