package bundle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/offcpu"
)

func TestWriteOpenRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b1")
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.Create(RecordingFile)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("not really jfr")
	f.Close()
	meta := Meta{
		Lockscope: "test", Created: time.Unix(1700000000, 0).UTC(), Host: "h",
		Target: Target{PID: 42, JVM: "17.0.15", Flags: map[string]string{"PreserveFramePointer": "false"}},
		Clock:  clock.Mapping{Start: clock.Pair{Monotonic: 1, Realtime: 2}, End: clock.Pair{Monotonic: 3, Realtime: 4}},
		Start:  1, End: 3, Requested: time.Minute, Ended: "duration",
		Profiler: &Profiler{Name: "jfr", File: RecordingFile, Clock: "jvm"},
		Latency:  &Latency{Source: "kafka:9092", SLO: 65 * time.Millisecond, Kind: "service", Requests: 10, OverSLO: 1},
		Labels:   map[string]string{"alertname": "KafkaProduceLatencyHigh"},
		Warnings: []string{"off-CPU not collected: not root"},
	}
	if err := w.Finish(&meta); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(meta, b.Meta); diff != "" {
		t.Errorf("meta round trip (-want +got):\n%s", diff)
	}
	if b.Meta.Format != Format || b.Meta.Version != Version {
		t.Errorf("format %q version %d", b.Meta.Format, b.Meta.Version)
	}
	if len(b.Meta.Files) != 1 || b.Meta.Files[0].Name != RecordingFile || b.Meta.Files[0].Bytes != 14 {
		t.Errorf("files = %+v", b.Meta.Files)
	}
	if err := b.Verify(); err != nil {
		t.Errorf("verify: %v", err)
	}
	os.WriteFile(b.Path(RecordingFile), []byte("changed"), 0o644)
	if err := b.Verify(); err == nil || !strings.Contains(err.Error(), RecordingFile) {
		t.Errorf("verify after change: %v", err)
	}
	if _, err := Create(dir); err == nil {
		t.Error("Create on a non-empty directory: want an error")
	}
	if _, err := w.Create("../escape"); err == nil {
		t.Error("Create with ..: want an error")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, ErrIncomplete) {
		t.Errorf("no meta.json: %v, want ErrIncomplete", err)
	}
	os.WriteFile(filepath.Join(dir, MetaFile), []byte(`{"format":"lockscope-bundle","version":99}`), 0o644)
	if _, err := Open(dir); !errors.Is(err, ErrNewerVersion) {
		t.Errorf("version 99: %v, want ErrNewerVersion", err)
	}
	os.WriteFile(filepath.Join(dir, MetaFile), []byte(`{"format":"other","version":1}`), 0o644)
	if _, err := Open(dir); err == nil {
		t.Error("other format: want an error")
	}
	os.WriteFile(filepath.Join(dir, MetaFile), []byte(`{"format":`), 0o644)
	if _, err := Open(dir); err == nil {
		t.Error("truncated meta.json: want an error")
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrIncomplete) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestHint(t *testing.T) {
	err := Hint(&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk is full") {
		t.Errorf("ENOSPC hint: %v", err)
	}
}

func TestOffCPURoundTrip(t *testing.T) {
	wait := []Frame{{Name: "jbd2_log_wait_commit", Kind: KindKernel}, {Name: "ext4_sync_file", Kind: KindKernel}}
	futex := []Frame{{Name: "futex_wait", Kind: KindKernel}}
	user := []Frame{{Name: "__futex_abstimed_wait_common", Module: "libc.so.6", Kind: KindNative},
		{Name: "Lkafka/log/UnifiedLog;::append", Kind: KindJIT}}
	in := []Interval{
		{TID: 10, TGID: 9, Thread: "data-plane-kafka-request-handler-0", Start: 100, End: 5000, State: offcpu.Uninterruptible, CPU: 1, Kernel: wait},
		{TID: 11, TGID: 9, Thread: "data-plane-kafka-request-handler-1", Start: 200, End: 6000, Wakeup: 5800, State: offcpu.Sleeping, WakerTID: 10,
			WakerThread: "data-plane-kafka-request-handler-0", Kernel: futex, User: user, Waker: wait},
		{TID: 10, TGID: 9, Thread: "data-plane-kafka-request-handler-0", Start: 7000, End: 9000, State: offcpu.Preempted, KernelErr: -14},
		{TID: 12, TGID: 9, Start: 0, End: 1, Kernel: wait},
	}
	var buf bytes.Buffer
	w := NewOffCPUWriter(&buf)
	for i := range in {
		if err := w.Write(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Each frame and stack is defined once.
	if n := strings.Count(buf.String(), `"name":"jbd2_log_wait_commit"`); n != 1 {
		t.Errorf("frame defined %d times", n)
	}
	var got []Interval
	if err := ReadOffCPU(bytes.NewReader(buf.Bytes()), func(iv *Interval) error {
		got = append(got, *iv)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// Truncated in the middle of a line: the complete intervals, then an error.
	cut := buf.Bytes()[:bytes.LastIndex(buf.Bytes()[:buf.Len()-1], []byte("\n"))+10]
	n := 0
	err := ReadOffCPU(bytes.NewReader(cut), func(*Interval) error { n++; return nil })
	if err == nil || n != 3 {
		t.Errorf("truncated stream: %d intervals, err %v; want 3 and an error", n, err)
	}
}

func TestOffCPUEmptyAndBad(t *testing.T) {
	var buf bytes.Buffer
	w := NewOffCPUWriter(&buf)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("empty stream has %d lines, want the header alone", n)
	}
	n := 0
	if err := ReadOffCPU(&buf, func(*Interval) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("empty stream: %d, %v", n, err)
	}
	for _, bad := range []string{
		"",
		`{"format":"nope","version":1}` + "\n",
		`{"format":"lockscope-offcpu","version":2}` + "\n",
		`{"format":"lockscope-offcpu","version":1}` + "\n" + `{"stack":1,"frames":[5]}` + "\n",
		`{"format":"lockscope-offcpu","version":1}` + "\n" + `{"tid":1,"start":1,"end":2,"state":1,"kernel":3}` + "\n",
	} {
		if err := ReadOffCPU(strings.NewReader(bad), func(*Interval) error { return nil }); err == nil {
			t.Errorf("ReadOffCPU(%q): want an error", bad)
		}
	}
}

// TestProvisional: the meta.json a capture writes when it starts makes the
// bundle recoverable, not finished: Open refuses it, OpenUnfinished reopens
// it, and Finish replaces it with the final one.
func TestProvisional(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta := Meta{Lockscope: "test", Target: Target{PID: 42}, Start: 5, Requested: time.Minute,
		Profiler: &Profiler{Name: "jfr", Remote: "/tmp/lockscope-1-ab.jfr", Deadline: 99}}
	if err := w.WriteProvisional(&meta); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrIncomplete) || !errors.Is(err, ErrUnfinished) {
		t.Errorf("Open of a provisional bundle: %v, want ErrIncomplete and ErrUnfinished", err)
	}
	meta.Profiler.Started = 7
	if err := w.WriteProvisional(&meta); err != nil { // an update replaces it
		t.Fatal(err)
	}
	w2, got, err := OpenUnfinished(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(meta, *got); diff != "" || !got.Provisional {
		t.Errorf("provisional meta round trip (-want +got):\n%s", diff)
	}
	got.End = 9
	if err := w2.Finish(got); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Finish: %v", err)
	}
	if b.Meta.Provisional || b.Meta.End != 9 || b.Meta.Profiler.Started != 7 {
		t.Errorf("finished meta %+v", b.Meta)
	}
	if _, _, err := OpenUnfinished(dir); err == nil {
		t.Error("OpenUnfinished of a finished bundle: want an error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("bundle holds %d entries, want meta.json alone (no temporary files left)", len(entries))
	}
}

func TestTrimStream(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than one backwards read
	for _, tc := range []struct {
		name, in, want string
	}{
		{"complete", "a\nb\n", "a\nb\n"},
		{"partial last line", "a\nb\n{\"tid\":1,\"st", "a\nb\n"},
		{"partial first line", "{\"form", ""},
		{"empty", "", ""},
		{"long partial line", "a\n" + long, "a\n"},
		{"long lines", long + "\n" + long + "\n" + long, long + "\n" + long + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.jsonl")
			os.WriteFile(p, []byte(tc.in), 0o644)
			dropped, err := TrimStream(p)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != tc.want || dropped != int64(len(tc.in)-len(tc.want)) {
				t.Errorf("kept %d bytes, dropped %d; want %d kept", len(got), dropped, len(tc.want))
			}
		})
	}
}
