// Package cpustat samples what the CPU scheduler did to a process, for the
// verdict to tell CPU saturation from cgroup throttling: the host's CPU
// use (/proc/stat), the process's own (/proc/PID/stat), and its CPU
// cgroup's quota and throttling counters (cgroup v1 cpu.stat nr_periods,
// nr_throttled, throttled_time; cgroup v2 cpu.stat nr_periods,
// nr_throttled, throttled_usec, and cpu.max), as a Kubernetes CPU limit
// sets them. The cgroup is looked up again at every sample: a process can
// be moved while it is watched.
package cpustat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/clock"
)

// Sample is one reading. Counters are cumulative; compare two samples of
// the same cgroup (Cgroup) for rates.
type Sample struct {
	// T is CLOCK_MONOTONIC ns.
	T int64 `json:"t"`
	// HostBusy and HostTotal are the host's CPU time in USER_HZ ticks:
	// busy (all but idle and iowait) and all.
	HostBusy  uint64 `json:"host_busy"`
	HostTotal uint64 `json:"host_total"`
	// ProcTicks is the process's user+system time in USER_HZ ticks.
	ProcTicks uint64 `json:"proc_ticks"`
	// Cgroup is the process's CPU cgroup ("" when none was found), V2
	// whether it is a cgroup v2 one.
	Cgroup string `json:"cgroup,omitempty"`
	V2     bool   `json:"v2,omitempty"`
	// Periods, Throttled and ThrottledNs are the cgroup's enforcement
	// periods, those throttled, and the time throttled (ns).
	Periods     uint64 `json:"nr_periods,omitempty"`
	Throttled   uint64 `json:"nr_throttled,omitempty"`
	ThrottledNs uint64 `json:"throttled_ns,omitempty"`
	// QuotaUs and PeriodUs are the cgroup's limit (QuotaUs 0: none).
	QuotaUs  int64 `json:"quota_us,omitempty"`
	PeriodUs int64 `json:"period_us,omitempty"`
}

// Sampler reads samples of one process.
type Sampler struct {
	pid  int
	proc string // the /proc to read (tests may point it elsewhere)
	sys  string // the cgroup filesystem root
	// v1Root is the cgroup v1 cpu controller's mount point, if any.
	v1Root string
}

// New prepares to sample pid.
func New(pid int) (*Sampler, error) {
	s := &Sampler{pid: pid, proc: "/proc", sys: "/sys/fs/cgroup"}
	if _, err := os.Stat(filepath.Join(s.proc, strconv.Itoa(pid), "stat")); err != nil {
		return nil, fmt.Errorf("cpustat: process %d: %w", pid, err)
	}
	s.v1Root = v1CPUMount(filepath.Join(s.proc, "self", "mountinfo"))
	return s, nil
}

// Read takes one sample. A process gone is an error; a cgroup that cannot
// be read leaves the cgroup fields empty.
func (s *Sampler) Read() (Sample, error) {
	smp := Sample{T: clock.Now()}
	var err error
	if smp.HostBusy, smp.HostTotal, err = hostTicks(filepath.Join(s.proc, "stat")); err != nil {
		return smp, err
	}
	if smp.ProcTicks, err = procTicks(filepath.Join(s.proc, strconv.Itoa(s.pid), "stat")); err != nil {
		return smp, err
	}
	dir, v2 := s.cgroupDir()
	if dir == "" {
		return smp, nil
	}
	st, err := readKV(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return smp, nil
	}
	smp.Cgroup, smp.V2 = dir, v2
	smp.Periods, smp.Throttled = st["nr_periods"], st["nr_throttled"]
	if v2 {
		smp.ThrottledNs = st["throttled_usec"] * 1000
		smp.QuotaUs, smp.PeriodUs = cpuMax(filepath.Join(dir, "cpu.max"))
	} else {
		smp.ThrottledNs = st["throttled_time"]
		smp.QuotaUs = readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
		smp.PeriodUs = readInt(filepath.Join(dir, "cpu.cfs_period_us"))
		if smp.QuotaUs < 0 {
			smp.QuotaUs = 0
		}
	}
	return smp, nil
}

// Run samples every interval until ctx ends or the process is gone,
// calling emit with each sample.
func (s *Sampler) Run(ctx context.Context, every time.Duration, emit func(Sample) error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		smp, err := s.Read()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // the process exited: the capture says so
			}
			return err
		}
		if err := emit(smp); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// cgroupDir finds the process's CPU cgroup directory: the v1 cpu
// controller's when there is one, else the v2 unified hierarchy's.
func (s *Sampler) cgroupDir() (string, bool) {
	b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(s.pid), "cgroup"))
	if err != nil {
		return "", false
	}
	var v2path string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2path = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "cpu" && s.v1Root != "" {
				return filepath.Join(s.v1Root, parts[2]), false
			}
		}
	}
	if v2path != "" {
		// cgroup2 at /sys/fs/cgroup (a pure v2 host) or /sys/fs/cgroup/unified (hybrid).
		for _, root := range []string{s.sys, filepath.Join(s.sys, "unified")} {
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
				return filepath.Join(root, v2path), true
			}
		}
	}
	return "", false
}

// v1CPUMount finds the mount point of the cgroup v1 cpu controller.
func v1CPUMount(mountinfo string) string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... MOUNTPOINT ... - cgroup cgroup rw,cpu,cpuacct
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, opts := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(opts) < 3 || opts[0] != "cgroup" {
			continue
		}
		for _, o := range strings.Split(opts[2], ",") {
			if o == "cpu" {
				return fields[4]
			}
		}
	}
	return ""
}

func hostTicks(path string) (busy, total uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("cpustat: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("cpustat: %s: unexpected first line %q", path, line)
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is counted in user already
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

func procTicks(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpustat: %s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpustat: %s: too few fields", path)
	}
	// utime and stime are fields 14 and 15 of stat(5): 12 and 13 after ')'.
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, nil
}

func readKV(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out, nil
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// cpuMax reads cgroup v2's cpu.max: "QUOTA PERIOD" or "max PERIOD".
func cpuMax(path string) (quota, period int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	period, _ = strconv.ParseInt(f[1], 10, 64)
	if f[0] == "max" {
		return 0, period
	}
	quota, _ = strconv.ParseInt(f[0], 10, 64)
	return quota, period
}
