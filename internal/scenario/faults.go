package scenario

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Window is a span in which a fault was in effect.
type Window struct{ Start, End time.Time }

// Contains reports whether t lies in [Start, End).
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// InWindows reports whether t lies in one of ws.
func InWindows(ws []Window, t time.Time) bool {
	return slices.ContainsFunc(ws, func(w Window) bool { return w.Contains(t) })
}

// A Fault switches a disturbance on. It returns once the disturbance is in
// effect, with an off func that switches it off and returns once it is
// gone. When it returns an error, nothing of it is left on.
type Fault func() (off func() error, err error)

// Schedule says when Cycle switches a fault on.
type Schedule struct {
	// First is the wait before the first window.
	First time.Duration
	// On is how long each window lasts, Off the pause after it.
	On, Off time.Duration
	// Count is the number of windows (0: until the context is done).
	Count int
}

// Cycle applies f as s says until ctx is done or s.Count windows have
// passed, and returns the windows as they really were: each starts when f
// returned (the fault in effect) and ends when its off func returned (the
// fault gone). A cancelled ctx ends the current window early; the off func
// is called in every path. The error is the first one of f or of an off
// func, which also ends the cycle; cancellation is not an error.
func Cycle(ctx context.Context, s Schedule, f Fault) ([]Window, error) {
	if s.On <= 0 || s.First < 0 || s.Off < 0 || s.Count < 0 {
		return nil, fmt.Errorf("fault schedule %+v: want On > 0 and no negative values", s)
	}
	var ws []Window
	wait := s.First
	for s.Count == 0 || len(ws) < s.Count {
		if !sleep(ctx, wait) {
			return ws, nil
		}
		w, err := apply(ctx, s.On, f)
		if !w.Start.IsZero() {
			ws = append(ws, w)
		}
		if err != nil {
			return ws, err
		}
		wait = s.Off
	}
	return ws, nil
}

// apply runs one window of f.
func apply(ctx context.Context, on time.Duration, f Fault) (w Window, err error) {
	off, err := f()
	if err != nil {
		return Window{}, fmt.Errorf("switching fault on: %w", err)
	}
	w.Start = time.Now()
	defer func() {
		if oerr := off(); oerr != nil && err == nil {
			err = fmt.Errorf("switching fault off: %w", oerr)
		}
		w.End = time.Now()
	}()
	sleep(ctx, on)
	return w, nil
}

// sleep waits d or until ctx is done, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// JournalPressure is a noisy neighbour on dir's filesystem: threads
// processes each rewrite a file in dir in 256 KiB chunks, each chunk
// synced (dd oflag=dsync, i.e. fdatasync per write). dd truncates the file
// every 8 chunks, so every write allocates blocks and every sync must wait
// for a jbd2 commit: the journal is kept busy, and the txlog's own
// fdatasync on the same filesystem queues behind those commits and the
// writers' data. Each thread holds at most 2 MiB on disk. The files are
// removed and the filesystem synced when the fault is switched off, so the
// window ends once the disk has drained.
//
// The writers are separate processes (sh + dd), not goroutines of the test
// binary: that is what a noisy neighbour is (another tgid, so off-CPU
// capture filtered to the JVM does not see the writers' own waits), the Go
// scheduler and GC of the test are not in the way, and killing their
// process groups is a complete cleanup.
func JournalPressure(dir string, threads int) Fault {
	return JournalPressureChunks(dir, threads, 256)
}

// JournalPressureBulk is a neighbour that writes mib MiB to the page cache
// and then fsyncs it, over and over (dd conv=fsync), on threads processes:
// each fsync makes a journal commit that, in ext4's data=ordered mode,
// must first write those mib MiB out, and every other sync on the
// filesystem waits for that commit. It costs little CPU (the writeback is
// the disk's work), so the fault stays the filesystem's on a small machine.
func JournalPressureBulk(dir string, threads, mib int) Fault {
	return pressure(dir, threads, fmt.Sprintf(`while :; do dd if=/dev/zero of="$1" bs=1M count=%d conv=fsync status=none || exit 1; done`, mib))
}

// JournalPressureChunks is JournalPressure writing chunkKiB at a time: few
// writers of large chunks load the journal and the disk with little CPU
// (many small writers on a small machine saturate its CPUs too, and the
// fault is then no longer only the filesystem's).
func JournalPressureChunks(dir string, threads, chunkKiB int) Fault {
	if chunkKiB <= 0 {
		return func() (func() error, error) { return nil, fmt.Errorf("journal pressure: chunks of %d KiB", chunkKiB) }
	}
	return pressure(dir, threads, fmt.Sprintf(`while :; do dd if=/dev/zero of="$1" bs=%dK count=8 oflag=dsync status=none || exit 1; done`, chunkKiB))
}

// pressure runs script (given its file as $1) on threads processes.
func pressure(dir string, threads int, script string) Fault {
	return func() (func() error, error) {
		if threads <= 0 {
			return nil, fmt.Errorf("journal pressure: %d threads", threads)
		}
		files := make([]string, threads)
		ps, err := startProcs(threads, func(i int) *exec.Cmd {
			files[i] = filepath.Join(dir, fmt.Sprintf("journal-pressure-%d", i))
			return exec.Command("sh", "-c", script, "sh", files[i])
		})
		if err != nil {
			return nil, fmt.Errorf("journal pressure: %w", err)
		}
		return func() error {
			errs := []error{ps.kill()}
			for _, f := range files {
				if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			// Commit the removals and drain the writes still queued now,
			// so the fault's tail is inside its window, not after it.
			errs = append(errs, syncFS(dir))
			return errors.Join(errs...)
		}, nil
	}
}

// syncFS flushes the filesystem that holds dir (syncfs(2)).
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// CPUHogs runs n busy-looping processes (sh 'while :; do :; done'), which
// compete with the JVM for the CPUs. Shell loops rather than stress-ng:
// one process per hog and no other dependency.
func CPUHogs(n int) Fault {
	return func() (func() error, error) {
		if n <= 0 {
			return nil, fmt.Errorf("cpu hogs: %d processes", n)
		}
		ps, err := startProcs(n, func(int) *exec.Cmd {
			return exec.Command("sh", "-c", "while :; do :; done")
		})
		if err != nil {
			return nil, fmt.Errorf("cpu hogs: %w", err)
		}
		return ps.kill, nil
	}
}

// procs are injected processes, each the leader of its own process group.
type procs []*exec.Cmd

// startProcs starts n processes made by mk. Each gets its own process group
// (so killing the group also kills what it forked, like dd under sh) and
// SIGKILL when the test binary dies. On error, those already started are
// killed.
func startProcs(n int, mk func(i int) *exec.Cmd) (procs, error) {
	ps := make(procs, 0, n)
	for i := range n {
		c := mk(i)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			ps.kill()
			return nil, err
		}
		ps = append(ps, c)
	}
	return ps, nil
}

// kill kills every process group and waits for the leaders.
func (ps procs) kill() error {
	var err error
	for _, c := range ps {
		if kerr := syscall.Kill(-c.Process.Pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) && err == nil {
			err = fmt.Errorf("killing process group %d: %w", c.Process.Pid, kerr)
		}
	}
	for _, c := range ps {
		c.Wait() // killed: the error only says so
	}
	return err
}

// cgroupPrefix names the cgroups CgroupQuota makes, so a leftover one (of a
// test binary killed mid-window) is easy to spot.
const cgroupPrefix = "lockscope-scenario-"

// CgroupQuota puts all threads of process pid in a new cgroup limited to
// quota CPU time per period (CFS bandwidth control), the way a container's
// CPU limit throttles a JVM. Off moves the threads back to the cgroups they
// came from and removes the new one. It uses cgroup v2 (cpu.max) when that
// is the hierarchy mounted at /sys/fs/cgroup, else cgroup v1's cpu
// controller at /sys/fs/cgroup/cpu (cpu.cfs_quota_us, cpu.cfs_period_us).
// A hybrid setup's /sys/fs/cgroup/unified has no controllers and is not
// used.
func CgroupQuota(pid int, quota, period time.Duration) Fault {
	return func() (func() error, error) {
		if quota < time.Millisecond || period < time.Millisecond || period > time.Second {
			return nil, fmt.Errorf("cgroup quota %v per %v: want quota >= 1ms and period in [1ms, 1s]", quota, period)
		}
		cg, err := detectCPUCgroup()
		if err != nil {
			return nil, err
		}
		return cg.limit(pid, quota, period)
	}
}

// cpuCgroup is a hierarchy with the cpu controller.
type cpuCgroup struct {
	root string
	v2   bool
}

// errNoCPUCgroup says that CgroupQuota has nothing to work with.
var errNoCPUCgroup = errors.New("no cgroup cpu controller: want cgroup v2 mounted at /sys/fs/cgroup or cgroup v1's cpu controller at /sys/fs/cgroup/cpu")

func detectCPUCgroup() (cpuCgroup, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return cpuCgroup{root: "/sys/fs/cgroup", v2: true}, nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		return cpuCgroup{root: "/sys/fs/cgroup/cpu"}, nil
	}
	return cpuCgroup{}, errNoCPUCgroup
}

func (cg cpuCgroup) limit(pid int, quota, period time.Duration) (func() error, error) {
	orig, err := cg.threadCgroups(pid)
	if err != nil {
		return nil, err
	}
	leader, ok := orig[pid]
	if !ok {
		return nil, fmt.Errorf("process %d: no main thread", pid)
	}
	if cg.v2 {
		if err := cg.enableCPU(); err != nil {
			return nil, err
		}
	}
	// Directly under the root: in v2 a cgroup with processes cannot have
	// children with controllers, so under the process's own cgroup would
	// not do in general.
	name := fmt.Sprintf("%s%d-%d", cgroupPrefix, pid, time.Now().UnixNano())
	dir := filepath.Join(cg.root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("making cgroup: %w", err)
	}
	q, p := quota.Microseconds(), period.Microseconds()
	var files [][2]string
	if cg.v2 {
		files = [][2]string{{"cpu.max", fmt.Sprintf("%d %d", q, p)}}
	} else {
		files = [][2]string{{"cpu.cfs_period_us", strconv.FormatInt(p, 10)}, {"cpu.cfs_quota_us", strconv.FormatInt(q, 10)}}
	}
	// In both versions cgroup.procs moves every thread of the process.
	files = append(files, [2]string{"cgroup.procs", strconv.Itoa(pid)})
	for _, f := range files {
		if err := writeCgroup(filepath.Join(dir, f[0]), f[1]); err != nil {
			cg.restore(dir, pid, orig, leader)
			return nil, errors.Join(err, removeCgroup(dir))
		}
	}
	return func() error {
		return errors.Join(cg.restore(dir, pid, orig, leader), removeCgroup(dir))
	}, nil
}

// restore moves the threads in dir back where they were (threads started
// since go where the main thread was). Threads that exited meanwhile are
// no error.
func (cg cpuCgroup) restore(dir string, pid int, orig map[int]string, leader string) error {
	if cg.v2 {
		// v2 keeps a process's threads together (outside threaded
		// subtrees), so the process goes back as a whole.
		return ignoreESRCH(writeCgroup(filepath.Join(cg.root, leader, "cgroup.procs"), strconv.Itoa(pid)))
	}
	tids, err := readInts(filepath.Join(dir, "tasks"))
	if err != nil {
		return err
	}
	var errs []error
	for _, tid := range tids {
		to, ok := orig[tid]
		if !ok {
			to = leader
		}
		errs = append(errs, ignoreESRCH(writeCgroup(filepath.Join(cg.root, to, "tasks"), strconv.Itoa(tid))))
	}
	return errors.Join(errs...)
}

// enableCPU makes the cpu controller available to the root's children.
func (cg cpuCgroup) enableCPU() error {
	b, err := os.ReadFile(filepath.Join(cg.root, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("reading cgroup controllers: %w", err)
	}
	if slices.Contains(strings.Fields(string(b)), "cpu") {
		return nil
	}
	if err := writeCgroup(filepath.Join(cg.root, "cgroup.subtree_control"), "+cpu"); err != nil {
		return fmt.Errorf("enabling the cpu controller: %w", err)
	}
	return nil
}

// threadCgroups returns each thread's cgroup in the cpu hierarchy, relative
// to its root.
func (cg cpuCgroup) threadCgroups(pid int) (map[int]string, error) {
	taskDir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(taskDir)
	if err != nil {
		return nil, fmt.Errorf("listing threads: %w", err)
	}
	m := make(map[int]string, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		path, err := cgroupOf(filepath.Join(taskDir, e.Name(), "cgroup"), cg.v2)
		if errors.Is(err, os.ErrNotExist) {
			continue // exited
		}
		if err != nil {
			return nil, err
		}
		m[tid] = path
	}
	return m, nil
}

// cgroupOf reads a /proc/.../cgroup file and returns the path in the cgroup
// v2 hierarchy ("0::/path") or the v1 hierarchy that has the cpu
// controller ("4:cpu,cpuacct:/path").
func cgroupOf(file string, v2 bool) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			continue
		}
		if v2 && id == "0" && ctrls == "" {
			return path, nil
		}
		if !v2 && slices.Contains(strings.Split(ctrls, ","), "cpu") {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s: no cpu cgroup", file)
}

func writeCgroup(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("writing %s to cgroup file: %w", value, err)
	}
	return nil
}

// removeCgroup removes an emptied cgroup. The kernel may report it busy
// for a moment after its last task left, hence the retries.
func removeCgroup(dir string) error {
	var err error
	for range 50 {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", dir, err)
}

func ignoreESRCH(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func readInts(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ns []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		ns = append(ns, n)
	}
	return ns, sc.Err()
}
