package merge

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/latency"
)

const ms = int64(time.Millisecond)

func TestSummarizeFS(t *testing.T) {
	seg := &bundle.FSFileInfo{Path: "/k/orders-0/00000000000000000000.log", Dev: "7:0", Topic: "orders", Partition: 0, Kind: "log"}
	other := &bundle.FSFileInfo{Path: "/k/recovery-point-offset-checkpoint", Dev: "7:0", Partition: -1, Kind: "checkpoint"}
	d := &bundle.FSData{
		Ops: []bundle.FSOp{
			{Op: "write", File: seg, Thread: "handler-1", TID: 11, Bytes: 1000, Start: uint64(100 * ms), End: uint64(180 * ms)},
			{Op: "fsync", File: other, Thread: "scheduler", TID: 12, Start: uint64(500 * ms), End: uint64(502 * ms)},
		},
		Journal: []bundle.JournalEvent{
			{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 5, Start: uint64(90 * ms), End: uint64(200 * ms)},  // long
			{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 6, Start: uint64(400 * ms), End: uint64(410 * ms)}, // short
			{Kind: bundle.JournalJBD2Commit, Dev: "8:0", Transaction: 1, Start: uint64(600 * ms), End: uint64(900 * ms)}, // long, other device
		},
		Histograms: []bundle.FSHistogram{
			// 98 writes in [2^14,2^15) ns, one in [2^16,2^17), one of 80 ms in [2^26,2^27).
			{Op: "write", File: seg, Count: 100, SumNs: uint64(90 * ms), Buckets: func() []uint64 {
				b := make([]uint64, 27)
				b[14], b[16], b[26] = 98, 1, 1
				return b
			}()},
		},
	}
	reqs := []FSRequest{
		{Start: 150 * ms, End: 220 * ms, OverSLO: true},  // long commit 5 and the slow write
		{Start: 650 * ms, End: 800 * ms, OverSLO: true},  // only the other device's commit: not counted
		{Start: 300 * ms, End: 305 * ms, OverSLO: false}, // nothing
		{Start: 405 * ms, End: 420 * ms, OverSLO: false}, // a short commit only
		{Start: 501 * ms, End: 503 * ms, OverSLO: false}, // the slow fsync
		// The checkpoint's fsync is no file of the request's partition.
		{Start: 501 * ms, End: 503 * ms, OverSLO: false, Partitions: []string{"orders-0"}},
	}
	ws := &latency.WindowSet{Clock: latency.Monotonic, Windows: []latency.Window{{Start: 140 * ms, End: 230 * ms}}}
	s := SummarizeFS(d, &bundle.FS{Min: time.Millisecond}, reqs, ws, FSOptions{})

	o := s.Overlap
	if o.Slow != 2 || o.SlowLongCommit != 1 || o.SlowSlowOp != 1 || o.Within != 4 || o.WithinLongCommit != 0 || o.WithinSlowOp != 1 {
		t.Errorf("overlap = %+v", o)
	}
	if len(o.Devices) != 1 || o.Devices[0] != "7:0" {
		t.Errorf("log devices = %v, want [7:0]", o.Devices)
	}
	if len(s.Files) != 2 {
		t.Fatalf("files = %+v", s.Files)
	}
	w := s.Files[0]
	if w.Group != "orders-0" || w.Op != "write" || w.Count != 100 || w.Slow != 1 || w.SlowInWindows != 1 ||
		w.P50 < 1<<14 || w.P50 > 1<<15 || w.P99 < 1<<16 || w.P99 > 1<<17 || w.Max != 80*time.Millisecond || w.Bytes != 1000 {
		t.Errorf("segment writes = %+v", w)
	}
	if f := s.Files[1]; f.Group != "/k/recovery-point-offset-checkpoint" || f.Kind != "checkpoint" || f.Slow != 1 || f.SlowInWindows != 0 {
		t.Errorf("checkpoint = %+v", f)
	}
	if len(s.Journal) != 2 || s.Journal[0].Dev != "7:0" || s.Journal[0].Count != 2 || s.Journal[0].Long != 1 ||
		s.Journal[0].Max != 110*time.Millisecond {
		t.Errorf("journal = %+v", s.Journal)
	}
	if len(s.Slowest) != 2 || s.Slowest[0].Op != "write" || s.Slowest[0].JournalTx != 5 || !s.Slowest[0].InWindow ||
		s.Slowest[1].JournalTx != 0 {
		t.Errorf("slowest = %+v", s.Slowest)
	}
	if !strings.Contains(s.Sentence, "50% of over-SLO requests overlapped a journal commit (jbd2 or fast commit) ≥ 50ms") {
		t.Errorf("sentence = %q", s.Sentence)
	}
	var buf bytes.Buffer
	if err := s.WriteText(&buf); err != nil || !strings.Contains(buf.String(), "orders-0") {
		t.Errorf("text: %v\n%s", err, buf.String())
	}
}

func TestSpanSet(t *testing.T) {
	ss := spanSet{spans: []span{{0, 100}, {10, 20}, {30, 40}, {200, 210}}}
	ss.build()
	for _, c := range []struct {
		s, e int64
		want bool
	}{{50, 60, true}, {101, 199, false}, {205, 300, true}, {-5, -1, false}, {211, 220, false}, {100, 100, true}, {199, 200, true}} {
		if got := ss.overlaps(c.s, c.e); got != c.want {
			t.Errorf("overlaps(%d,%d) = %v", c.s, c.e, got)
		}
	}
	var empty spanSet
	empty.build()
	if empty.overlaps(0, 1) {
		t.Error("empty set overlaps")
	}
}

// TestSummarizeFSOnXFS: log forces are instants, so the summary relates
// requests to the broker's syncs and counts the forces during each.
func TestSummarizeFSOnXFS(t *testing.T) {
	seg := &bundle.FSFileInfo{Path: "/x/t-0/00000000000000000000.log", Dev: "7:2", Topic: "t", Partition: 0, Kind: "log"}
	d := &bundle.FSData{
		Ops: []bundle.FSOp{{Op: "fdatasync", File: seg, TID: 3, Thread: "data-plane-kafk", Start: uint64(10 * ms), End: uint64(90 * ms)}},
		Journal: []bundle.JournalEvent{
			{Kind: bundle.JournalXFSLogForce, Dev: "7:2", Start: uint64(20 * ms), End: uint64(20 * ms)},
			{Kind: bundle.JournalXFSLogForce, Dev: "7:2", Start: uint64(80 * ms), End: uint64(80 * ms)},
			{Kind: bundle.JournalXFSLogForce, Dev: "7:2", Start: uint64(95 * ms), End: uint64(95 * ms)},
		},
	}
	reqs := []FSRequest{{Start: 5 * ms, End: 95 * ms, OverSLO: true, Partitions: []string{"t-0"}}, {Start: 200 * ms, End: 201 * ms, Partitions: []string{"t-0"}}}
	s := SummarizeFS(d, nil, reqs, nil, FSOptions{Threads: map[uint32]string{3: "data-plane-kafka-request-handler-2"}})
	if s.Overlap.Commits != 0 || s.Overlap.LogForces != 3 || s.Overlap.SlowSlowOp != 1 || s.Overlap.WithinSlowOp != 0 {
		t.Errorf("overlap %+v", s.Overlap)
	}
	if len(s.Slowest) != 1 || s.Slowest[0].LogForces != 2 || s.Slowest[0].Journal != "" || s.Slowest[0].Thread != "data-plane-kafka-request-handler-2" {
		t.Errorf("slowest %+v", s.Slowest)
	}
	if !strings.Contains(s.Sentence, "XFS: its 3 log forces are instants") || strings.Contains(s.Sentence, "journal commit (") {
		t.Errorf("sentence %q", s.Sentence)
	}
}

// TestSummarizeFSWithoutPartitions: requests from a CSV or a server's log
// name no partitions; each is related to any slow operation of the target,
// and the sentence says so instead of speaking of partitions.
func TestSummarizeFSWithoutPartitions(t *testing.T) {
	txlog := &bundle.FSFileInfo{Path: "/data/txlog.dat", Dev: "7:0"}
	d := &bundle.FSData{
		Ops: []bundle.FSOp{{Op: "fdatasync", File: txlog, TID: 7, Thread: "txlog-sync", Start: uint64(100 * ms), End: uint64(180 * ms)}},
		Journal: []bundle.JournalEvent{
			{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 9, Start: uint64(105 * ms), End: uint64(178 * ms)},
		},
	}
	reqs := []FSRequest{{Start: 90 * ms, End: 190 * ms, OverSLO: true}, {Start: 300 * ms, End: 305 * ms}}
	s := SummarizeFS(d, nil, reqs, nil, FSOptions{})
	if o := s.Overlap; o.Partitioned || o.SlowLongCommit != 1 || o.SlowSlowOp != 1 || o.WithinSlowOp != 0 {
		t.Errorf("overlap %+v", o)
	}
	for _, want := range []string{"100% of over-SLO requests overlapped a journal commit", "on the target's devices", "on any file of the target"} {
		if !strings.Contains(s.Sentence, want) {
			t.Errorf("sentence %q lacks %q", s.Sentence, want)
		}
	}
}
