package fslens

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
)

// A stream written with the bundle's writer and read back summarizes to
// the same table and journal view lockscope fs prints live.
func TestSummarizeBundle(t *testing.T) {
	ms := uint64(time.Millisecond)
	seg := file("/k/orders-0/00000000000000000000.log", "7:0", 12)
	cp := file("/k/recovery-point-offset-checkpoint", "7:0", 13)
	root := file("/var/log/kafka/server.log", "254:1", 99)
	var buf bytes.Buffer
	w := bundle.NewFSWriter(&buf)
	journal := []bundle.JournalEvent{
		{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 5, TID: 300, Start: 1000 * ms, End: 1080 * ms, Logging: 76 * time.Millisecond, Handles: 9, Blocks: 20},
		{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 6, TID: 300, Start: 6000 * ms, End: 6004 * ms},
		{Kind: bundle.JournalJBD2Commit, Dev: "254:1", Transaction: 77, TID: 301, Start: 1000 * ms, End: 1100 * ms},
		{Kind: bundle.JournalExt4SyncFile, Dev: "7:0", TID: 42, Start: 1001 * ms, End: 1082 * ms},
	}
	ops := []bundle.FSOp{
		// An fsync waiting for commit 5, and a write stuck behind it.
		{Op: "fsync", File: seg, TID: 42, Thread: "data-plane-kafka-request-handler-1", Start: 1001 * ms, End: 1082 * ms},
		{Op: "pwrite64", File: seg, TID: 43, Bytes: 4096, Start: 1010 * ms, End: 1079 * ms},
		// A slow write with no commit running.
		{Op: "pwrite64", File: seg, TID: 43, Bytes: 4096, Start: 3000 * ms, End: 3030 * ms},
		{Op: "fsync", File: cp, TID: 50, Start: 6001 * ms, End: 6005 * ms},
		{Op: "fsync", File: &bundle.FSFileInfo{Dev: "7:0", Ino: 1234, Partition: -1}, TID: 50, Start: 7000 * ms, End: 7002 * ms},
	}
	// Written out of order: the summary sorts.
	for i := len(journal) - 1; i >= 0; i-- {
		if err := w.WriteJournal(&journal[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ops {
		if err := w.WriteOp(&ops[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []Histogram{
		hist("pwrite64", seg, 5*time.Microsecond, 69*time.Millisecond, 30*time.Millisecond),
		hist("fsync", seg, 81*time.Millisecond),
		hist("fsync", cp, 4*time.Millisecond),
		hist("write", root, 3*time.Microsecond),
	} {
		rec := BundleHistogram(&h)
		if err := w.WriteHistogram(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	d, err := bundle.ReadFS(&buf)
	if err != nil {
		t.Fatal(err)
	}
	meta := &bundle.FS{Min: time.Millisecond, Devices: []bundle.FSDevice{{Dev: "7:0", MountPoint: "/k", FSType: "ext4", Options: "rw,data=ordered"}},
		Counters: map[string]uint64{"events": 5, "drops": 0, "unpaired": 1}}
	s := SummarizeBundle(d, meta, 4242, 10*time.Second)

	if len(s.Devices) != 2 {
		t.Fatalf("devices %+v, want 7:0 and 254:1", s.Devices)
	}
	k := s.Devices[1]
	if k.Dev != "7:0" || k.Mount == nil || k.Mount.FSType != "ext4" || k.Commits != 2 || k.SlowOps != 5 || k.InJournal != 3 || k.Syncs != 1 {
		t.Errorf("device 7:0: %+v", k)
	}
	if s.Unresolved != 1 || s.Counters.Events != 5 || s.Counters.Unpaired != 1 {
		t.Errorf("unresolved %d, counters %+v", s.Unresolved, s.Counters)
	}
	var out bytes.Buffer
	if err := WriteSummary(&out, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pid 4242 over 10s", "orders-0 fsync: 1 ops, 1 slow", "orders-0 pwrite64: 3 ops, 2 slow",
		"dev 7:0: /k ext4", "slow operations: 5, of which 3 (60%)", "slowest: #5 80.00ms", "dev 254:1: (not in the target's mounts)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	// The bundle's histograms keep their maxima.
	for _, g := range s.Groups {
		var want uint64
		for _, h := range d.Histograms {
			if GroupName(h.File) == g.Name && h.Op == g.Hist.Op {
				want = max(want, h.MaxNs)
			}
		}
		if g.Hist.MaxNs != want {
			t.Errorf("%s %s: max %d, want the bundle's %d", g.Name, g.Hist.Op, g.Hist.MaxNs, want)
		}
	}
}
