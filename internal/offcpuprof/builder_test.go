package offcpuprof

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/symbolize"
)

const kallsyms = `ffffffff81000000 T entry_SYSCALL_64
ffffffff81000100 T do_syscall_64
ffffffff81000200 T do_fsync
ffffffff81000300 T jbd2_log_wait_commit
ffffffff81000400 T do_futex
ffffffff81000500 T futex_wait
ffffffff81000600 T bpf_trace_run4
ffffffff81000700 T __schedule
`

func testBuilder(t *testing.T) *Builder {
	t.Helper()
	k, err := symbolize.ParseKallsyms(strings.NewReader(kallsyms))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(k)
	fsync := []uint64{0xffffffff81000310, 0xffffffff81000210, 0xffffffff81000110, 0xffffffff81000010}
	futex := []uint64{0xffffffff81000510, 0xffffffff81000410, 0xffffffff81000110, 0xffffffff81000010}
	// Walked at switch-out: starts with the tracepoint dispatch.
	traced := append([]uint64{0xffffffff90000000, 0xffffffff81000610, 0xffffffff81000710}, futex...)
	for _, iv := range []offcpu.Interval{
		{TID: 10, TGID: 1, Thread: "kafka-log", State: offcpu.Uninterruptible, Start: 0, End: 7e6, Wakeup: 6e6, Kernel: fsync},
		{TID: 10, TGID: 1, Thread: "kafka-log", State: offcpu.Uninterruptible, Start: 10e6, End: 13e6, Kernel: fsync},
		{TID: 11, TGID: 1, Thread: "data-plane;1", State: offcpu.Sleeping, Start: 0, End: 2e6, Kernel: futex},
		{TID: 12, TGID: 1, State: offcpu.Sleeping, Start: 0, End: 1e6, Kernel: traced},
		{TID: 13, TGID: 1, Thread: "x", State: offcpu.Preempted, Start: 0, End: 5e5, KernelErr: -14},
	} {
		b.Add(&iv)
	}
	return b
}

func TestFolded(t *testing.T) {
	b := testBuilder(t)
	var out bytes.Buffer
	if err := b.WriteFolded(&out); err != nil {
		t.Fatal(err)
	}
	want := `kafka-log;[uninterruptible];entry_SYSCALL_64_[k];do_syscall_64_[k];do_fsync_[k];jbd2_log_wait_commit_[k] 10000000
data-plane:1;[sleeping];entry_SYSCALL_64_[k];do_syscall_64_[k];do_futex_[k];futex_wait_[k] 2000000
tid-12;[sleeping];entry_SYSCALL_64_[k];do_syscall_64_[k];do_futex_[k];futex_wait_[k];__schedule_[k] 1000000
x;[runqueue];[kernel_stack_unavailable:_errno_14]_[k] 500000
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	if b.Intervals != 5 || b.Nanos != 13.5e6 {
		t.Errorf("totals %d intervals %d ns", b.Intervals, b.Nanos)
	}
}

// go tool pprof is the oracle that the profile is valid and says what the
// intervals said.
func TestProfileOracle(t *testing.T) {
	b := testBuilder(t)
	p, err := b.Profile(time.Unix(1700000000, 0), 20*time.Second, "a comment")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "offcpu.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Round trip through the library.
	r, _ := os.Open(path)
	defer r.Close()
	q, err := profile.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Sample) != 4 || q.DefaultSampleType != "offcpu" || q.SampleType[1].Unit != "nanoseconds" {
		t.Errorf("parsed profile: %d samples, default %q, types %v", len(q.Sample), q.DefaultSampleType, q.SampleType)
	}

	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=20", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"Type: offcpu", "10000us 74.07%", "jbd2_log_wait_commit", "futex_wait", "Total samples = 13500us"} {
		if !strings.Contains(text, want) {
			t.Errorf("pprof -top lacks %q:\n%s", want, text)
		}
	}
	out, err = exec.Command("go", "tool", "pprof", "-top", "-sample_index=cpu_wait", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Total samples = 1ms") {
		t.Errorf("pprof -sample_index=cpu_wait: %v\n%s", err, out)
	}
	out, err = exec.Command("go", "tool", "pprof", "-top", "-tagfocus=state=uninterruptible", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Showing nodes accounting for 10ms") || strings.Contains(string(out), "futex_wait") {
		t.Errorf("pprof -tagfocus=state=uninterruptible: %v\n%s", err, out)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"ok", Options{PIDs: []int{1}, Format: "pprof", MinBlock: time.Millisecond}, ""},
		{"folded", Options{PIDs: []int{1}, Format: "folded"}, ""},
		{"format", Options{PIDs: []int{1}, Format: "svg"}, "invalid format"},
		{"duration", Options{PIDs: []int{1}, Format: "pprof", Duration: -1}, "invalid duration"},
		{"no pid", Options{Format: "pprof"}, "no target pid"},
		{"mode", Options{PIDs: []int{1}, Format: "pprof", Mode: "fast"}, "invalid mode"},
		{"min block", Options{PIDs: []int{1}, Format: "pprof", MinBlock: -1}, "min block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	o := Options{PIDs: []int{1}, Format: "pprof"}
	o.Validate()
	if o.Output != "offcpu.pb.gz" || o.Config().MinBlock != offcpu.KeepAll {
		t.Errorf("defaults: output %q, min block %v", o.Output, o.Config().MinBlock)
	}
}
