package bundle

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFSStreamRoundTrip(t *testing.T) {
	seg := &FSFileInfo{Path: "/data/kafka/orders-3/00000000000000000000.log", Dev: "7:1", Ino: 12, Topic: "orders", Partition: 3, Kind: "log"}
	ckpt := &FSFileInfo{Path: "/data/kafka/recovery-point-offset-checkpoint", Dev: "7:1", Ino: 13, Partition: -1, Kind: "checkpoint"}
	want := &FSData{
		Ops: []FSOp{
			{Op: "write", File: seg, TID: 7, TGID: 5, Thread: "data-plane-kafka-request-handler-1", Bytes: 4096, Start: 100, End: 2_000_100},
			{Op: "fsync", File: ckpt, TID: 8, TGID: 5, Thread: "kafka-scheduler-0", Start: 300, End: 90_000_300},
			{Op: "write", TID: 9, TGID: 5, Errno: 28, Start: 400, End: 1_500_400}, // unresolved file, ENOSPC
		},
		Journal: []JournalEvent{{Kind: JournalJBD2Commit, Dev: "7:1", Transaction: 42, TID: 77, Start: 50, End: 80_000_050,
			Running: 5 * time.Second, Locked: 4 * time.Millisecond, Flushing: 0, Logging: 76 * time.Millisecond, Handles: 310, Blocks: 12, BlocksLogged: 14, Sync: true},
			{Kind: JournalExt4SyncFile, Dev: "7:1", TID: 8, Ino: 13, Start: 60, End: 90, Ret: -5}},
		Histograms: []FSHistogram{{Op: "write", File: seg, Count: 3, SumNs: 9000, MaxNs: 5000, Bytes: 12288, Buckets: []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1}}},
	}
	var buf bytes.Buffer
	w := NewFSWriter(&buf)
	for i := range want.Ops {
		if err := w.WriteOp(&want.Ops[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want.Journal {
		if err := w.WriteJournal(&want.Journal[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteHistogram(&want.Histograms[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `"path":"/data/kafka/orders-3/`); n != 1 {
		t.Errorf("segment file defined %d times, want once:\n%s", n, buf.String())
	}
	got, err := ReadFS(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if tp := got.Ops[0].File.TopicPartition(); tp != "orders-3" {
		t.Errorf("TopicPartition = %q", tp)
	}
	if tp := got.Ops[1].File.TopicPartition(); tp != "" {
		t.Errorf("checkpoint TopicPartition = %q, want none", tp)
	}
}

func TestFSStreamEmptyAndBad(t *testing.T) {
	var buf bytes.Buffer
	if err := NewFSWriter(&buf).Flush(); err != nil {
		t.Fatal(err)
	}
	d, err := ReadFS(&buf)
	if err != nil || len(d.Ops)+len(d.Journal)+len(d.Histograms) != 0 {
		t.Fatalf("empty stream: %v, %+v", err, d)
	}
	for name, in := range map[string]string{
		"empty":          "",
		"wrong format":   `{"format":"lockscope-offcpu","version":1}` + "\n",
		"undefined file": `{"format":"lockscope-fs","version":1}` + "\n" + `{"op":"write","f":9,"start":1,"end":2}` + "\n",
		"garbage":        `{"format":"lockscope-fs","version":1}` + "\n{nope\n",
	} {
		if _, err := ReadFS(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err = ReadFS(strings.NewReader(`{"format":"lockscope-fs","version":9}` + "\n"))
	if !errors.Is(err, ErrNewerVersion) {
		t.Errorf("newer version: %v", err)
	}
}
