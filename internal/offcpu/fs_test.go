//go:build linux

package offcpu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/lockscope/lockscope/internal/loopfs"
)

// fsRun is what one traced run of the helper produced.
type fsRun struct {
	pid, tid int
	dir      string
	ops      []fsHelperOp
	events   []FSEvent
	journal  []JournalEvent
	hists    []FSHistogram
	counters FSCounters
	missing  []string
}

// traceHelper runs the fs helper in dir under a tracer configured by cfg
// (PIDs filled in) and returns everything both sides saw.
func traceHelper(t *testing.T, dir string, cfg FSConfig) *fsRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKSCOPE_FS_HELPER="+dir)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading helper thread id: %v", err)
	}
	r := &fsRun{pid: cmd.Process.Pid, dir: dir}
	if r.tid, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("helper printed %q", line)
	}

	cfg.PIDs = []int{r.pid}
	cfg.PollInterval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr, err := StartFS(ctx, cfg)
	if err != nil {
		t.Fatalf("StartFS: %v", err)
	}
	defer tr.Close()
	r.missing = tr.Missing()
	got := make(chan struct{})
	go func() {
		defer close(got)
		evs, js := tr.Events(), tr.Journal()
		for evs != nil || js != nil {
			select {
			case e, ok := <-evs:
				if !ok {
					evs = nil
					continue
				}
				r.events = append(r.events, e)
			case j, ok := <-js:
				if !ok {
					js = nil
					continue
				}
				r.journal = append(r.journal, j)
			}
		}
	}()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("reading helper: %v", err)
		}
		line = strings.TrimSpace(line)
		if line == "done" {
			break
		}
		op, err := parseHelperOp(line)
		if err != nil {
			t.Fatal(err)
		}
		r.ops = append(r.ops, op)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	// Let the last records be read and a commit that was running finish.
	time.Sleep(200 * time.Millisecond)
	if r.hists, err = tr.Histograms(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-got
	if err := tr.Err(); err != nil {
		t.Fatalf("reading: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r.counters, err = tr.Counters(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d ops, %d events, %d journal events; %v; missing %v", filepath.Base(dir), len(r.ops), len(r.events), len(r.journal), r.counters, r.missing)
	return r
}

func statFile(t *testing.T, path string) (dev, ino uint64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev, st.Ino
}

// checkOps matches every operation the helper timed with the tracer's
// event of the same thread, file and system call, and checks bytes and
// latency. Operations faster than min need no event. It returns the
// latencies off by more than 10% or 100µs from the program's own timing:
// on a shared VM, time outside the call (an interrupt, the hypervisor
// running another guest) can land between the program's clock read and
// the call, and callers retry such runs.
func checkOps(t *testing.T, r *fsRun, min time.Duration) (off []string) {
	t.Helper()
	used := make([]bool, len(r.events))
	for _, op := range r.ops {
		if op.op.IsRead() && !slicesContainsRead(r) {
			continue
		}
		dev, ino := statFile(t, filepath.Join(r.dir, op.file))
		own := time.Duration(op.end - op.start)
		found := -1
		for i, e := range r.events {
			if !used[i] && int(e.TID) == r.tid && e.Op == op.op && e.Ino == ino && e.Start >= op.start && e.Start <= op.end {
				found = i
				break
			}
		}
		if found < 0 {
			// 10% or 100µs of slack on our own timing, as below.
			// The histograms count it in any case (checkHistograms); a
			// missing event means the call itself was under min, which
			// time outside the call can make the program's timing miss.
			if own > min+max(own/10, 100*time.Microsecond) {
				off = append(off, fmt.Sprintf("%v %s (%v by its own clock): no event", op.op, op.file, own))
			}
			continue
		}
		used[found] = true
		e := r.events[found]
		if e.Dev != dev || int(e.TGID) != r.pid {
			t.Errorf("%v %s: event dev %#x tgid %d, want %#x %d", op.op, op.file, e.Dev, e.TGID, dev, r.pid)
		}
		if e.Ret != op.bytes {
			t.Errorf("%v %s: %d bytes, want %d", op.op, op.file, e.Ret, op.bytes)
		}
		// Same clock: the system call happened inside our own timing.
		if e.Start < op.start || e.End > op.end {
			t.Errorf("%v %s: traced [%d, %d] outside own timing [%d, %d]", op.op, op.file, e.Start, e.End, op.start, op.end)
		}
		d := e.Duration()
		if diff := own - d; diff < 0 {
			t.Errorf("%v %s: traced %v, longer than the program's own %v", op.op, op.file, d, own)
		} else if diff > max(own/10, 100*time.Microsecond) && op.preempted {
			// On a shared CPU the program may be preempted between its
			// clock read and the system call: that time is not the
			// call's.
			t.Logf("%v %s: traced %v, timed %v by the program, which was preempted", op.op, op.file, d, own)
		} else if diff > max(own/10, 100*time.Microsecond) {
			off = append(off, fmt.Sprintf("%v %s: traced %v, timed %v by the program", op.op, op.file, d, own))
		}
		if d < min {
			t.Errorf("%v %s: event of %v under the threshold %v", op.op, op.file, d, min)
		}
	}
	for i, e := range r.events {
		if !used[i] && int(e.TGID) == r.pid {
			t.Errorf("event matching no operation of the helper: %+v", e)
		}
	}
	return off
}

// traceChecked runs the helper until one run's latencies all match the
// program's own timing (at most three runs), and returns that run.
func traceChecked(t *testing.T, dir string, cfg FSConfig, min time.Duration) *fsRun {
	t.Helper()
	var all []string
	for attempt := 1; attempt <= 3; attempt++ {
		r := traceHelper(t, dir, cfg)
		off := checkOps(t, r, min)
		if len(off) == 0 || t.Failed() {
			return r
		}
		t.Logf("run %d: latencies off, retrying: %s", attempt, strings.Join(off, "; "))
		all = append(all, off...)
	}
	t.Fatalf("no run with every latency within 10%% or 100µs of the program's own: %s", strings.Join(all, "; "))
	return nil
}

func slicesContainsRead(r *fsRun) bool {
	for _, h := range r.hists {
		if h.Op.IsRead() {
			return true
		}
	}
	return false
}

// checkHistograms: every operation is counted, with its bytes, fast ones
// included; nothing else of the helper is.
func checkHistograms(t *testing.T, r *fsRun, reads bool) {
	t.Helper()
	type key struct {
		ino uint64
		op  FSOp
	}
	type sums struct{ count, bytes uint64 }
	want := map[key]sums{}
	for _, op := range r.ops {
		if op.op.IsRead() && !reads {
			continue
		}
		_, ino := statFile(t, filepath.Join(r.dir, op.file))
		s := want[key{ino, op.op}]
		s.count++
		s.bytes += uint64(op.bytes)
		want[key{ino, op.op}] = s
	}
	got := map[key]sums{}
	for _, h := range r.hists {
		if int(h.TGID) != r.pid {
			continue
		}
		var n uint64
		for _, b := range h.Buckets {
			n += b
		}
		if n != h.Count {
			t.Errorf("histogram %v ino %d: buckets sum to %d, count %d", h.Op, h.Ino, n, h.Count)
		}
		if h.Count > 0 && (h.MaxNs == 0 || h.MaxNs > h.SumNs) {
			t.Errorf("histogram %v ino %d: max %d, sum %d", h.Op, h.Ino, h.MaxNs, h.SumNs)
		}
		got[key{h.Ino, h.Op}] = sums{h.Count, h.Bytes}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("histogram %v ino %d: count, bytes %v, want %v", k.op, k.ino, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("histogram %v ino %d %v of nothing the helper did", k.op, k.ino, g)
		}
	}
}

func journalOf(r *fsRun, kind JournalKind, dev uint64) []JournalEvent {
	var out []JournalEvent
	for _, j := range r.journal {
		if j.Kind == kind && j.Dev == dev {
			out = append(out, j)
		}
	}
	return out
}

func TestFSExt4(t *testing.T) {
	requireBPF(t)
	mnt := loopfs.Mount(t, loopfs.Options{Type: "ext4", DirectIO: true})
	r := traceChecked(t, mnt, FSConfig{Min: KeepAll, Reads: true}, 0)
	checkHistograms(t, r, true)
	dev, _ := statFile(t, mnt)
	commits := journalOf(r, JournalJBD2Commit, dev)
	if len(commits) == 0 {
		t.Fatalf("no jbd2 commit on %#x: %+v", dev, r.journal)
	}
	for _, c := range commits {
		if c.Start == 0 || c.End <= c.Start || c.TID == 0 {
			t.Errorf("commit %+v: bad times or thread", c)
		}
	}
	// Every fsync and fdatasync of a file with new data waits for a
	// commit: the first fsync of the log must overlap one.
	var overlapped bool
	for _, e := range r.events {
		if e.Op == FSFsync {
			for _, c := range commits {
				if c.Start < e.End && c.End > e.Start {
					overlapped = true
				}
			}
			break
		}
	}
	if !overlapped {
		t.Errorf("the first fsync overlaps no jbd2 commit: %+v", commits)
	}
	var syncs int
	for _, j := range journalOf(r, JournalExt4SyncFile, dev) {
		if int(j.TID) == r.tid {
			syncs++
			if j.End <= j.Start || j.Ino == 0 {
				t.Errorf("ext4_sync_file %+v", j)
			}
		}
	}
	if syncs != 4 {
		t.Errorf("%d ext4_sync_file of the helper, want 4 (two fsync, two fdatasync)", syncs)
	}
}

// TestFSExt4FastCommit: with fast_commit, the helper's syncs are fast
// commits in its own thread, timed inside its fsync or fdatasync.
func TestFSExt4FastCommit(t *testing.T) {
	requireBPF(t)
	mnt := loopfs.Mount(t, loopfs.Options{Type: "ext4", DirectIO: true, Mkfs: []string{"-O", "fast_commit"}})
	r := traceHelper(t, mnt, FSConfig{Min: KeepAll})
	dev, _ := statFile(t, mnt)
	var fcs []JournalEvent
	for _, j := range journalOf(r, JournalExt4FastCommit, dev) {
		if int(j.TID) == r.tid {
			fcs = append(fcs, j)
		}
	}
	if len(fcs) == 0 {
		t.Fatalf("no fast commit by the helper on %#x: %+v", dev, r.journal)
	}
	for _, fc := range fcs {
		if fc.End <= fc.Start {
			t.Errorf("fast commit %+v: bad times", fc)
		}
		inside := false
		for _, e := range r.events {
			if e.Op.IsSync() && e.TID == fc.TID && e.Start <= fc.Start && fc.End <= e.End {
				inside = true
			}
		}
		if !inside {
			t.Errorf("fast commit %+v lies in no fsync or fdatasync of the helper", fc)
		}
	}
}

func TestFSXFS(t *testing.T) {
	requireBPF(t)
	mnt := loopfs.Mount(t, loopfs.Options{Type: "xfs", DirectIO: true})
	r := traceChecked(t, mnt, FSConfig{}, DefaultFSMin)
	checkHistograms(t, r, false)
	dev, _ := statFile(t, mnt)
	if len(journalOf(r, JournalXFSLogForce, dev)) == 0 {
		t.Errorf("no xfs log force on %#x (missing: %v)", dev, r.missing)
	}
	var fsyncs int
	for _, j := range journalOf(r, JournalXFSFileFsync, dev) {
		if int(j.TID) == r.tid {
			fsyncs++
		}
	}
	if fsyncs != 4 {
		t.Errorf("%d xfs_file_fsync of the helper, want 4", fsyncs)
	}
	// Writes to the page cache take microseconds: counted, not reported.
	for _, e := range r.events {
		if e.Duration() < DefaultFSMin {
			t.Errorf("event under the threshold: %+v", e)
		}
	}
}

// progIDs returns the ids of the tracer's loaded programs.
func (t *FSTracer) progIDs() ([]ebpf.ProgramID, error) {
	var ids []ebpf.ProgramID
	seen := map[*ebpf.Program]bool{}
	for _, tp := range t.tracepoints() {
		if seen[tp.prog] {
			continue
		}
		seen[tp.prog] = true
		info, err := tp.prog.Info()
		if err != nil {
			return nil, err
		}
		id, _ := info.ID()
		ids = append(ids, id)
	}
	return ids, nil
}

func TestFSCloseDetaches(t *testing.T) {
	requireBPF(t)
	h := startHelper(t, "spin")
	tr, err := StartFS(context.Background(), FSConfig{PIDs: []int{h.cmd.Process.Pid}, Reads: true})
	if err != nil {
		t.Fatal(err)
	}
	progs, err := tr.progIDs()
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	// One program per traced system call (11 with reads: 10 enters and
	// one shared exit) and per journal tracepoint, less the ones this
	// kernel does not have.
	if want := 11 + 10 - len(tr.Missing()); len(tr.links) < 20 || len(progs) != want {
		t.Errorf("%d links, %d programs (want >= 20 and %d)", len(tr.links), len(progs), want)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tr.Histograms(); err != nil {
		t.Errorf("Histograms after Close: %v", err)
	}
	waitGone(t, progs, nil)
}

// A tracer process killed with SIGKILL runs no Close, yet leaves nothing
// attached: every link is owned by a file descriptor.
func TestKilledFSTracerDetaches(t *testing.T) {
	requireBPF(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("LOCKSCOPE_FS_TRACER_TARGET=%d", os.Getpid()))
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	var progs []ebpf.ProgramID
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("reading tracer ids: %v", err)
		}
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "attached" {
			break
		}
		id, err := strconv.ParseUint(f[len(f)-1], 10, 32)
		if len(f) != 2 || err != nil {
			t.Fatalf("tracer printed %q", line)
		}
		progs = append(progs, ebpf.ProgramID(id))
	}
	if len(progs) < 8 {
		t.Fatalf("%d programs, want the 8 write ones at least", len(progs))
	}
	for _, id := range progs {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			t.Fatalf("program %d of the running tracer: %v", id, err)
		}
		p.Close()
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, progs, nil)
}

// Where tracefs is not mounted (a fresh machine), StartFS mounts it. The
// helper unmounts it in a mount namespace of its own first.
func TestStartFSMountsTracefs(t *testing.T) {
	requireBPF(t)
	h := startHelper(t, "spin")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("LOCKSCOPE_FS_NO_TRACEFS=%d", h.cmd.Process.Pid))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "unmounted\ntraced\n") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The machine's own mount is untouched.
	if _, err := os.Stat(TracefsDir + "/events"); err != nil {
		t.Fatalf("tracefs of the test's namespace: %v", err)
	}
}

func TestStartFSErrors(t *testing.T) {
	requireBPF(t)
	for _, tc := range []struct {
		name string
		cfg  FSConfig
		want string
	}{
		{"no such pid", FSConfig{PIDs: []int{1 << 22}}, "no process with pid"},
		{"self", FSConfig{PIDs: []int{os.Getpid()}}, "itself"},
		{"negative min", FSConfig{PIDs: []int{1}, Min: -5}, "minimum latency"},
		{"ring", FSConfig{PIDs: []int{1}, RingBytes: 12345}, "power of two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := StartFS(context.Background(), tc.cfg)
			if err == nil {
				tr.Close()
				t.Fatal("StartFS succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestKernelHZ(t *testing.T) {
	hz, err := KernelHZ()
	if err != nil {
		t.Fatal(err)
	}
	m, err := measureHZ()
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			t.Skip("skipping: /proc/timer_list needs root")
		}
		t.Fatal(err)
	}
	if hz != m {
		t.Errorf("configured HZ %d, measured %d", hz, m)
	}
	t.Logf("HZ %d", hz)
}
