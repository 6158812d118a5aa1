package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/loopfs"
)

// fsBuffer is a bytes.Buffer safe to read while the command writes it.
type fsBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *fsBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *fsBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fsWriter is perl appending 20 × 4 KiB to a Kafka segment, each followed
// by an fsync, then writing, syncing and renaming a checkpoint like Kafka's
// log manager, once a line arrives on its stdin.
const fsWriter = `use IO::Handle;
my $d = shift;
<STDIN>;
open F, ">>", "$d/topic-0/00000000000000000000.log" or die "open: $!";
for (1..20) { print F "x" x 4096; F->flush; F->sync or die "fsync: $!"; select(undef, undef, undef, 0.05) }
open C, ">", "$d/recovery-point-offset-checkpoint.tmp" or die;
print C "0\n1\norders 0 42\n"; C->flush; C->sync; close C;
rename "$d/recovery-point-offset-checkpoint.tmp", "$d/recovery-point-offset-checkpoint" or die;
sleep 1.5;
`

// runFS runs lockscope fs with args on the writer in dir and returns its
// output once the writer has exited.
func runFS(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "topic-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("perl", "-e", fsWriter, dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting perl: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	root := newRootCmd()
	var out, errb fsBuffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"fs", "--pid", fmt.Sprint(cmd.Process.Pid), "--duration", "60s"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	// Start writing once the tracer is attached.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Tracing file operations") {
		select {
		case err := <-done:
			t.Fatalf("fs ended before tracing: %v\n%s%s", err, out.String(), errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("fs did not start tracing in 30s")
		}
	}
	io.WriteString(stdin, "go\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	// fs stops by itself when the process is gone.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fs: %v\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		cancel()
		<-done
		t.Fatalf("fs did not stop after the process exited:\n%s", out.String())
	}
	t.Logf("lockscope fs %s:\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

var opLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} `)

// lines returns the operation lines containing substr.
func lines(out, substr string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if opLine.MatchString(l) && strings.Contains(l, substr) {
			ls = append(ls, l)
		}
	}
	return ls
}

// summaryRow finds the row of the per topic-partition table.
func summaryRow(t *testing.T, out, group, op string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == group && f[1] == op {
			return f
		}
	}
	t.Fatalf("no summary row for %s %s:\n%s", group, op, out)
	return nil
}

func TestFSCommandExt4(t *testing.T) {
	requireOffcpu(t)
	mnt := loopfs.Mount(t, loopfs.Options{Type: "ext4", DirectIO: true})
	out := runFS(t, mnt, "--min", "0")
	seg := "topic-0/00000000000000000000.log"
	writes := lines(out, " write ")
	fsyncs := lines(out, " fsync ")
	if n := len(lines(strings.Join(writes, "\n"), seg)); n != 20 {
		t.Errorf("%d write lines on %s, want 20", n, seg)
	}
	for _, l := range writes {
		if strings.Contains(l, seg) && !strings.Contains(l, "4.0KiB") {
			t.Errorf("write line without its 4 KiB: %s", l)
		}
	}
	var segSyncs int
	for _, l := range fsyncs {
		if !strings.Contains(l, seg) {
			continue
		}
		segSyncs++
		// An fsync of new data on ext4 waits for the commit of its
		// transaction.
		if !regexp.MustCompile(`jbd2 commit #\d+ `).MatchString(l) {
			t.Errorf("fsync overlapping no jbd2 commit: %s", l)
		}
	}
	if segSyncs != 20 {
		t.Errorf("%d fsync lines on %s, want 20", segSyncs, seg)
	}
	cp := filepath.Join(mnt, "recovery-point-offset-checkpoint")
	if len(lines(out, cp)) == 0 {
		t.Errorf("no operation on the checkpoint %s(.tmp)", cp)
	}
	if r := summaryRow(t, out, "topic-0", "write"); r[2] != "20" || r[3] != "80.0KiB" || r[len(r)-2] != "20" || r[len(r)-1] != "log" {
		t.Errorf("write row %v, want 20 writes of 80 KiB, 20 slow, kind log", r)
	}
	if r := summaryRow(t, out, "topic-0", "fsync"); r[2] != "20" {
		t.Errorf("fsync row %v, want 20", r)
	}
	for _, want := range []string{"topic-0 fsync: 20 ops, 20 slow", "ext4 /dev/loop", "jbd2 commits: ", "drops=0", "exited"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`slow operations: (\d+), of which (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("no count of slow operations overlapping the journal")
	} else if n, _ := strconv.Atoi(m[2]); n < 20 {
		t.Errorf("%s slow operations overlapped the journal, want the 20 fsyncs at least", m[2])
	}
}

func TestFSCommandXFSThreshold(t *testing.T) {
	requireOffcpu(t)
	mnt := loopfs.Mount(t, loopfs.Options{Type: "xfs", DirectIO: true})
	out := runFS(t, mnt, "--min", "500ms")
	// 4 KiB writes to the page cache do not take 500ms: counted, not
	// printed.
	if ls := lines(out, " write "); len(ls) != 0 {
		t.Errorf("writes under the threshold printed: %v", ls)
	}
	if r := summaryRow(t, out, "topic-0", "write"); r[2] != "20" || r[3] != "80.0KiB" {
		t.Errorf("write row %v, want 20 writes of 80 KiB", r)
	}
	if r := summaryRow(t, out, "topic-0", "fsync"); r[2] != "20" {
		t.Errorf("fsync row %v, want 20", r)
	}
	for _, want := range []string{"xfs /dev/loop", "xfs log forces: ", "file syncs by the target: 21", "drops=0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestFSCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fs"}, "pid"},
		{[]string{"fs", "--pid", "1", "--min", "-1ms"}, "--min"},
		{[]string{"fs", "--pid", "1", "--duration", "-1s"}, "duration"},
		{[]string{"fs", "--pid", fmt.Sprint(os.Getpid())}, "itself"},
	} {
		_, stderr, err := runLockscope(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v %s, want an error about %s", tc.args, err, stderr, tc.want)
		}
	}
}

// TestFSCommandBundle: fs --bundle summarizes what a capture's lens
// recorded, and says so when the capture ran without it.
func TestFSCommandBundle(t *testing.T) {
	mk := func(withFS bool) string {
		dir := filepath.Join(t.TempDir(), "b")
		w, err := bundle.Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		meta := bundle.Meta{Target: bundle.Target{PID: 77}, Start: 1e9, End: 11e9}
		if withFS {
			f, err := w.Create(bundle.FSStreamFile)
			if err != nil {
				t.Fatal(err)
			}
			fw := bundle.NewFSWriter(f)
			seg := &bundle.FSFileInfo{Path: "/k/orders-2/00000000000000000000.log", Dev: "7:0", Topic: "orders", Partition: 2, Kind: "log"}
			fw.WriteOp(&bundle.FSOp{Op: "fdatasync", File: seg, TID: 5, Thread: "handler", Start: 2e9, End: 2e9 + 40e6})
			b := make([]uint64, 30)
			b[25] = 1
			fw.WriteHistogram(&bundle.FSHistogram{Op: "fdatasync", File: seg, Count: 1, SumNs: 40e6, MaxNs: 40e6, Buckets: b})
			if err := fw.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			meta.FS = &bundle.FS{File: bundle.FSStreamFile, Min: time.Millisecond}
		}
		if err := w.Finish(&meta); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	out, err := run(t, "fs", "--bundle", mk(true))
	if err != nil || !strings.Contains(out, "orders-2") || !strings.Contains(out, "fdatasync") || !strings.Contains(out, "40.00ms") {
		t.Errorf("fs --bundle: %v\n%s", err, out)
	}
	if _, err := run(t, "fs", "--bundle", mk(false)); err == nil || !strings.Contains(err.Error(), "without the filesystem lens") {
		t.Errorf("a bundle without the lens: %v", err)
	}
	if _, err := run(t, "fs", "--bundle", "x", "--pid", "1"); err == nil {
		t.Error("--bundle with --pid accepted")
	}
}
