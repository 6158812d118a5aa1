package offcpu

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestJournalAssembler(t *testing.T) {
	const dev = 7<<20 | 3 // kernel dev_t 7:3
	a := newJournalAssembler(250)
	var got []JournalEvent
	emit := func(j JournalEvent) { got = append(got, j) }
	ms := uint64(time.Millisecond)
	recs := []journalRec{
		// Transaction 10: start, end, then run stats (newer kernels).
		{rec: fsRecJBD2Start, dev: dev, transaction: 10, tid: 99, ts: 100 * ms, sync: 1},
		// Transaction 11 of another device, run stats before its end
		// (older kernels), started before the tracer.
		{rec: fsRecJBD2RunStats, dev: 8 << 20, transaction: 11, ts: 101 * ms, jiffies: [6]uint64{0, 0, 5, 1, 2, 3}, n: [4]uint32{4, 5, 6}},
		{rec: fsRecJBD2End, dev: dev, transaction: 10, tid: 99, ts: 130 * ms},
		{rec: fsRecJBD2End, dev: 8 << 20, transaction: 11, tid: 98, ts: 131 * ms},
		{rec: fsRecJBD2RunStats, dev: dev, transaction: 10, ts: 131 * ms, jiffies: [6]uint64{1, 2, 3, 4, 5, 6}, n: [4]uint32{7, 8, 9}},
		// A sync of thread 5, and an exit of a sync that began before.
		{rec: fsRecExt4SyncEnter, dev: dev, tid: 5, ino: 12, sync: 1, ts: 200 * ms},
		{rec: fsRecExt4SyncExit, dev: dev, tid: 6, ino: 13, ts: 201 * ms},
		{rec: fsRecExt4SyncExit, dev: dev, tid: 5, ino: 12, val: -5, ts: 210 * ms},
		{rec: fsRecJBD2Handle, dev: dev, transaction: 12, tid: 5, ts: 300 * ms, jiffies: [6]uint64{2}, n: [4]uint32{1, 2, 3, 4}},
		{rec: fsRecXFSLogForce, dev: dev, tid: 7, ts: 400 * ms, val: 1234},
		{rec: fsRecXFSFileFsync, dev: dev, tid: 5, ino: 14, ts: 401 * ms},
		// A commit that never ends is given up after journalStale.
		{rec: fsRecJBD2Start, dev: dev, transaction: 13, tid: 99, ts: 500 * ms},
		{rec: fsRecJBD2Start, dev: dev, transaction: 14, tid: 99, ts: 500*ms + journalStale + 1},
	}
	for i := range recs {
		a.add(&recs[i], emit)
	}
	j := 4 * time.Millisecond // a jiffy at HZ 250
	d := KernelDev(dev)
	want := []JournalEvent{
		{Kind: JournalJBD2Commit, Dev: KernelDev(8 << 20), Transaction: 11, TID: 98, Start: 131*ms - uint64(6*j), End: 131 * ms,
			Running: 5 * j, Locked: j, Flushing: 2 * j, Logging: 3 * j, Handles: 4, Blocks: 5, BlocksLogged: 6},
		{Kind: JournalJBD2Commit, Dev: d, Transaction: 10, TID: 99, Start: 100 * ms, End: 130 * ms, Sync: true,
			Wait: j, RequestDelay: 2 * j, Running: 3 * j, Locked: 4 * j, Flushing: 5 * j, Logging: 6 * j, Handles: 7, Blocks: 8, BlocksLogged: 9},
		{Kind: JournalExt4SyncFile, Dev: d, TID: 5, Ino: 12, Start: 200 * ms, End: 210 * ms, Sync: true, Ret: -5},
		{Kind: JournalJBD2Handle, Dev: d, Transaction: 12, TID: 5, Start: 300*ms - uint64(2*j), End: 300 * ms, Blocks: 4},
		{Kind: JournalXFSLogForce, Dev: d, TID: 7, Start: 400 * ms, End: 400 * ms},
		{Kind: JournalXFSFileFsync, Dev: d, TID: 5, Ino: 14, Start: 401 * ms, End: 401 * ms},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// 11 had no start, the exit of tid 6 no enter; 13 expired with only
	// its start, and is dropped.
	if a.unpaired != 3 {
		t.Errorf("unpaired %d, want 3", a.unpaired)
	}
	got = nil
	a.flush(emit)
	if len(got) != 0 || a.unpaired != 4 || len(a.commits) != 0 {
		t.Errorf("flush emitted %+v, unpaired %d, %d pending", got, a.unpaired, len(a.commits))
	}
}

func TestKernelDev(t *testing.T) {
	for _, tc := range []struct {
		kdev         uint32
		major, minor uint64
	}{{7<<20 | 0, 7, 0}, {259<<20 | 3, 259, 3}, {8<<20 | 300, 8, 300}, {253<<20 | 1<<19, 253, 1 << 19}} {
		d := KernelDev(tc.kdev)
		// stat(2)'s encoding (glibc's gnu_dev_major/minor).
		major := (d>>8)&0xfff | (d>>32)&^0xfff
		minor := d&0xff | (d>>12)&^0xff
		if major != tc.major || minor != tc.minor {
			t.Errorf("KernelDev(%#x) = %#x = %d:%d, want %d:%d", tc.kdev, d, major, minor, tc.major, tc.minor)
		}
	}
}

func TestFSConfigValidate(t *testing.T) {
	c := FSConfig{PIDs: []int{1}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Min != DefaultFSMin || c.RingBytes != DefaultFSRingBytes || c.MaxFiles != DefaultFSMaxFiles || c.PollInterval == 0 {
		t.Errorf("defaults not filled: %+v", c)
	}
	for _, bad := range []FSConfig{{}, {PIDs: []int{1, 1}}, {PIDs: []int{0}}, {PIDs: make([]int, MaxTargets+1)},
		{PIDs: []int{1}, Min: -2}, {PIDs: []int{1}, MaxFiles: -1}, {PIDs: []int{1}, PollInterval: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	k := FSConfig{PIDs: []int{1}, Min: KeepAll}
	if err := k.Validate(); err != nil || k.Min != KeepAll {
		t.Errorf("KeepAll: %v, %v", err, k.Min)
	}
	for op := FSWrite; op < fsOpEnd; op++ {
		if back, ok := ParseFSOp(op.String()); !ok || back != op {
			t.Errorf("%v does not round-trip", op)
		}
	}
}
