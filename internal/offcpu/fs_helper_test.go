//go:build linux

package offcpu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the process whose files are traced: with
// LOCKSCOPE_FS_HELPER set it runs fsHelper instead of the tests. (init runs
// before helper_test.go's TestMain.)
func init() {
	if dir := os.Getenv("LOCKSCOPE_FS_HELPER"); dir != "" {
		os.Exit(fsHelper(dir))
	}
	if pid := os.Getenv("LOCKSCOPE_FS_TRACER_TARGET"); pid != "" {
		os.Exit(fsTracerHelper(pid))
	}
	if pid := os.Getenv("LOCKSCOPE_FS_NO_TRACEFS"); pid != "" {
		os.Exit(fsNoTracefsHelper(pid))
	}
}

// fsNoTracefsHelper starts the tracer on pid where tracefs is not mounted:
// in a mount namespace of its own (so the machine's mount is untouched),
// it unmounts tracefs, then StartFS must mount it again. It prints
// "unmounted" and "traced".
func fsNoTracefsHelper(pidStr string) int {
	pid, _ := strconv.Atoi(pidStr)
	runtime.LockOSThread() // unshare applies to this thread
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "no-tracefs helper:", err)
		return 2
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fail(err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(err)
	}
	for {
		if err := unix.Unmount(TracefsDir, unix.MNT_DETACH); err != nil {
			break // EINVAL: nothing (more) mounted there
		}
	}
	if _, err := os.Stat(TracefsDir + "/events"); err == nil {
		return fail(fmt.Errorf("%s/events still there", TracefsDir))
	}
	fmt.Println("unmounted")
	tr, err := StartFS(context.Background(), FSConfig{PIDs: []int{pid}})
	if err != nil {
		return fail(err)
	}
	defer tr.Close()
	if _, err := os.Stat(TracefsDir + "/events/syscalls"); err != nil {
		return fail(err)
	}
	fmt.Println("traced")
	return 0
}

// fsTracerHelper traces pid, prints the ids of its programs and
// "attached", and reads until it is killed.
func fsTracerHelper(pidStr string) int {
	pid, _ := strconv.Atoi(pidStr)
	tr, err := StartFS(context.Background(), FSConfig{PIDs: []int{pid}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ids, err := tr.progIDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, id := range ids {
		fmt.Println("prog", id)
	}
	fmt.Println("attached")
	js := tr.Journal()
	for range tr.Events() {
	}
	for range js {
	}
	return 0
}

// fsHelperOp is one operation the helper made and timed itself.
type fsHelperOp struct {
	op         FSOp
	file       string // relative to the helper's directory
	bytes      int64
	start, end uint64 // CLOCK_MONOTONIC around the system call
	// preempted: the thread was preempted (an involuntary context switch)
	// while it timed the call, possibly outside the call itself.
	preempted bool
}

func parseHelperOp(line string) (fsHelperOp, error) {
	var o fsHelperOp
	var op string
	if _, err := fmt.Sscanf(line, "%s %s %d %d %d %t", &op, &o.file, &o.bytes, &o.start, &o.end, &o.preempted); err != nil {
		return o, fmt.Errorf("helper line %q: %w", line, err)
	}
	var ok bool
	if o.op, ok = ParseFSOp(op); !ok {
		return o, fmt.Errorf("helper line %q: unknown op", line)
	}
	return o, nil
}

// fsHelper writes, syncs and reads files of known sizes under dir (a Kafka
// partition directory among them) on one locked thread, printing each
// operation with its own timing, after its thread id and a "go" on stdin.
func fsHelper(dir string) int {
	runtime.LockOSThread()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "fs helper:", err)
		return 2
	}
	if err := os.MkdirAll(filepath.Join(dir, "topic-0"), 0o755); err != nil {
		return fail(err)
	}
	open := func(name string) (int, error) {
		return unix.Open(filepath.Join(dir, name), unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	}
	files := map[string]int{}
	for _, name := range []string{"topic-0/00000000000000000000.log", "topic-0/00000000000000000000.index", "other.dat"} {
		fd, err := open(name)
		if err != nil {
			return fail(err)
		}
		files[name] = fd
	}
	fmt.Printf("%d\n", unix.Gettid())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fail(err)
	}
	now := func() uint64 {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		return uint64(ts.Nano())
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	var out strings.Builder
	do := func(op FSOp, name string, call func(fd int) (int, error)) error {
		fd := files[name]
		var ru0, ru1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
		t0 := now()
		n, err := call(fd)
		t1 := now()
		unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
		if err != nil {
			return fmt.Errorf("%v %s: %w", op, name, err)
		}
		fmt.Fprintf(&out, "%s %s %d %d %d %t\n", op, name, n, t0, t1, ru1.Nivcsw != ru0.Nivcsw)
		return nil
	}
	log, idx := "topic-0/00000000000000000000.log", "topic-0/00000000000000000000.index"
	// Raw system calls: the Go runtime's entersyscall/exitsyscall (which
	// may wait for a P after a long call) would add time outside the call
	// to the program's own timing.
	// The arguments are copied into an array, not appended to: a heap
	// allocation (and its first page faults) between the clock reads would
	// count as time in the call.
	raw := func(nr uintptr, a ...uintptr) (int, error) {
		var r [6]uintptr
		copy(r[:], a)
		n, _, errno := unix.RawSyscall6(nr, r[0], r[1], r[2], r[3], r[4], r[5])
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
	p := func(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
	// vec calls nr with an iovec array of these sizes after fd, kept alive
	// across the call.
	vec := func(nr uintptr, fd int, sizes []int, rest ...uintptr) (int, error) {
		v := make([]unix.Iovec, len(sizes))
		off := 0
		for i, s := range sizes {
			v[i].Base = &buf[off]
			v[i].SetLen(s)
			off += s
		}
		n, err := raw(nr, append([]uintptr{uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v))}, rest...)...)
		runtime.KeepAlive(v)
		return n, err
	}
	steps := []struct {
		op   FSOp
		name string
		call func(fd int) (int, error)
	}{
		{FSWrite, log, func(fd int) (int, error) { return raw(unix.SYS_WRITE, uintptr(fd), p(buf), 4096) }},
		{FSWrite, log, func(fd int) (int, error) { return raw(unix.SYS_WRITE, uintptr(fd), p(buf), 100) }},
		{FSPwrite64, log, func(fd int) (int, error) { return raw(unix.SYS_PWRITE64, uintptr(fd), p(buf), 65536, 1<<20) }},
		{FSWritev, log, func(fd int) (int, error) { return vec(unix.SYS_WRITEV, fd, []int{1000, 2000, 3000}) }},
		{FSPwritev, idx, func(fd int) (int, error) { return vec(unix.SYS_PWRITEV, fd, []int{8, 8, 4080}, 0, 0) }},
		{FSPwritev2, idx, func(fd int) (int, error) { return vec(unix.SYS_PWRITEV2, fd, []int{4096}, 4096, 0, 0) }},
		{FSFsync, log, func(fd int) (int, error) { return raw(unix.SYS_FSYNC, uintptr(fd)) }},
		{FSWrite, log, func(fd int) (int, error) { return raw(unix.SYS_WRITE, uintptr(fd), p(buf), 1<<20) }},
		{FSFdatasync, log, func(fd int) (int, error) { return raw(unix.SYS_FDATASYNC, uintptr(fd)) }},
		{FSFdatasync, idx, func(fd int) (int, error) { return raw(unix.SYS_FDATASYNC, uintptr(fd)) }},
		{FSWrite, "other.dat", func(fd int) (int, error) { return raw(unix.SYS_WRITE, uintptr(fd), p(buf), 12345) }},
		{FSFsync, "other.dat", func(fd int) (int, error) { return raw(unix.SYS_FSYNC, uintptr(fd)) }},
		{FSPread64, log, func(fd int) (int, error) { return raw(unix.SYS_PREAD64, uintptr(fd), p(buf), 8192, 0) }},
		{FSReadv, log, func(fd int) (int, error) { return vec(unix.SYS_READV, fd, []int{512}) }},
	}
	for _, s := range steps {
		if err := do(s.op, s.name, s.call); err != nil {
			return fail(err)
		}
	}
	fmt.Print(out.String())
	fmt.Println("done")
	return 0
}
