package fslens

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

func TestParseMountinfo(t *testing.T) {
	in := `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
36 22 7:0 / /tmp/my\040dir/mnt rw,relatime shared:5 master:2 - ext4 /dev/loop0 rw,data=writeback
37 22 7:1 /sub /bind rw - xfs /dev/loop1 rw,attr2,inode64,logbufs=8
38 22 7:1 / /data rw - xfs /dev/loop1 rw,attr2,inode64,logbufs=8
39 22 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=1G
`
	ms, err := ParseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Dev: unix.Mkdev(254, 1), Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/vda1", Options: "rw,relatime,rw,errors=remount-ro"},
		{Dev: unix.Mkdev(7, 0), Root: "/", MountPoint: "/tmp/my dir/mnt", FSType: "ext4", Source: "/dev/loop0", Options: "rw,relatime,rw,data=writeback"},
		{Dev: unix.Mkdev(7, 1), Root: "/sub", MountPoint: "/bind", FSType: "xfs", Source: "/dev/loop1", Options: "rw,rw,attr2,inode64,logbufs=8"},
		{Dev: unix.Mkdev(7, 1), Root: "/", MountPoint: "/data", FSType: "xfs", Source: "/dev/loop1", Options: "rw,rw,attr2,inode64,logbufs=8"},
		{Dev: unix.Mkdev(0, 5), Root: "/", MountPoint: "/dev", FSType: "devtmpfs", Source: "udev", Options: "rw,nosuid,rw,size=1G"},
	}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// The bind mount of a subdirectory loses to the filesystem's root.
	if got := ByDev(ms)[unix.Mkdev(7, 1)].MountPoint; got != "/data" {
		t.Errorf("ByDev picked %q, want /data", got)
	}
	// (moby/sys/mountinfo takes a non-numeric major or minor as 0: the
	// kernel never writes one.)
	for _, bad := range []string{"1 2 3\n", "36 22 7:0 / /m rw - ext4\n", "36 22 7-0 / /m rw - ext4 /dev/l rw\n"} {
		if _, err := ParseMountinfo(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(bad)) {
			t.Errorf("ParseMountinfo(%q): %v, want an error quoting the line", bad, err)
		}
	}
}

// This process's own mounts parse, and the filesystem of a temporary
// directory is among them with the device stat(2) reports.
func TestMountsSelf(t *testing.T) {
	ms, err := Mounts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if _, ok := ByDev(ms)[st.Dev]; !ok {
		t.Errorf("device %s of the temp dir not in mountinfo", DevString(st.Dev))
	}
}

func hist(op string, f *bundle.FSFileInfo, lat ...time.Duration) Histogram {
	h := Histogram{Op: op, File: f, Buckets: make([]uint64, offcpu.FSHistBuckets)}
	for _, d := range lat {
		ns := uint64(d)
		h.Count++
		h.SumNs += ns
		h.MaxNs = max(h.MaxNs, ns)
		h.Bytes += 100
		h.Buckets[log2(ns)]++
	}
	return h
}

func TestHistogramQuantile(t *testing.T) {
	var lat []time.Duration
	for range 98 {
		lat = append(lat, 10*time.Microsecond) // bucket [8.2µs, 16.4µs)
	}
	lat = append(lat, 3*time.Millisecond, 50*time.Millisecond)
	h := hist("write", nil, lat...)
	for _, tc := range []struct {
		q      float64
		lo, hi time.Duration
	}{
		{0.5, 8192, 16384},
		{0.98, 8192, 16384},
		{0.99, 2097152, 4194304},
		{1, 33554432, 50 * time.Millisecond},
	} {
		if got := h.Quantile(tc.q); got < tc.lo || got > tc.hi {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v]", tc.q, got, tc.lo, tc.hi)
		}
	}
	if got := h.Mean(); got != (98*10*time.Microsecond+53*time.Millisecond)/100 {
		t.Errorf("Mean = %v", got)
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram has a latency")
	}
	// A round trip through the bundle keeps counts and buckets.
	b := BundleHistogram(&h)
	back := FromBundleHistogram(&b)
	if back.Count != h.Count || back.SumNs != h.SumNs || !cmp.Equal(back.Buckets, h.Buckets) {
		t.Errorf("bundle round trip: %+v", back)
	}
}

func file(p string, dev string, ino uint64) *bundle.FSFileInfo {
	topic, part, kind := Classify(p)
	return &bundle.FSFileInfo{Path: p, Dev: dev, Ino: ino, Topic: topic, Partition: part, Kind: kind}
}

func TestGroups(t *testing.T) {
	seg0 := file("/k/orders-0/00000000000000000000.log", "7:0", 12)
	seg1 := file("/k/orders-0/00000000000000001000.log", "7:0", 13)
	idx := file("/k/orders-0/00000000000000001000.index", "7:0", 14)
	other := file("/k/orders-1/00000000000000000000.log", "7:0", 15)
	cp := file("/k/recovery-point-offset-checkpoint", "7:0", 16)
	unknown := &bundle.FSFileInfo{Dev: "7:0", Ino: 99, Partition: -1}
	hists := []Histogram{
		hist("write", seg0, 10*time.Microsecond, 20*time.Microsecond),
		hist("write", seg1, 2*time.Millisecond),
		hist("write", idx, 5*time.Microsecond),
		hist("fsync", seg1, 40*time.Millisecond, 80*time.Millisecond),
		hist("write", other, time.Microsecond),
		hist("fsync", cp, 3*time.Millisecond),
		hist("fsync", unknown, time.Millisecond),
	}
	slow := SlowCounts{}
	for _, op := range []bundle.FSOp{{Op: "write", File: seg1}, {Op: "fsync", File: seg1}, {Op: "fsync", File: seg1},
		{Op: "fsync", File: cp}, {Op: "fsync", File: unknown}} {
		slow.Add(&op)
	}
	gs := Groups(hists, slow)
	type row struct {
		Name, Op string
		Count    uint64
		Bytes    uint64
		Slow     int
		Kinds    string
		Max      uint64
	}
	var got []row
	for _, g := range gs {
		got = append(got, row{g.Name, g.Hist.Op, g.Hist.Count, g.Hist.Bytes, g.Slow, strings.Join(g.Kinds, ","), g.Hist.MaxNs})
	}
	want := []row{
		{"orders-0", "fsync", 2, 200, 2, "log", uint64(80 * time.Millisecond)},
		{"/k/recovery-point-offset-checkpoint", "fsync", 1, 100, 1, "checkpoint", uint64(3 * time.Millisecond)},
		{"orders-0", "write", 4, 400, 1, "index,log", uint64(2 * time.Millisecond)},
		{"dev 7:0 ino 99", "fsync", 1, 100, 1, "", uint64(time.Millisecond)},
		{"orders-1", "write", 1, 100, 0, "log", uint64(time.Microsecond)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestJournalOverlap(t *testing.T) {
	ms := uint64(time.Millisecond)
	x := NewJournalIndex()
	x.Window = time.Second
	commits := []bundle.JournalEvent{
		{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 1, Start: 100 * ms, End: 110 * ms},
		{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 2, Start: 115 * ms, End: 180 * ms, Locked: 4 * time.Millisecond},
		{Kind: bundle.JournalJBD2Commit, Dev: "7:1", Transaction: 7, Start: 100 * ms, End: 200 * ms},
		{Kind: bundle.JournalXFSLogForce, Dev: "7:2", TID: 42, Start: 150 * ms, End: 150 * ms},
		{Kind: bundle.JournalXFSLogForce, Dev: "7:2", TID: 9, Start: 151 * ms, End: 151 * ms},
		{Kind: bundle.JournalExt4SyncFile, Dev: "7:0", TID: 42, Start: 100 * ms, End: 190 * ms},
	}
	for i := range commits {
		x.Add(&commits[i])
	}
	op := &bundle.FSOp{Op: "fsync", TID: 42, File: &bundle.FSFileInfo{Dev: "7:0"}, Start: 105 * ms, End: 181 * ms}
	o := x.Overlap(op)
	if o.Commit == nil || o.Commit.Transaction != 2 || o.Shared != 65*time.Millisecond || o.LogForces != 0 {
		t.Errorf("ext4 overlap %+v, want commit 2 for 65ms", o)
	}
	if !strings.Contains(OverlapLabel(o), "jbd2 commit #2 65.00ms (locked 4.00ms") {
		t.Errorf("label %q", OverlapLabel(o))
	}
	op.File.Dev = "7:2"
	o = x.Overlap(op)
	if o.Commit != nil || o.LogForces != 2 || !o.ByThread {
		t.Errorf("xfs overlap %+v, want 2 log forces, one by the thread", o)
	}
	op.File.Dev = "7:3"
	if o := x.Overlap(op); o.Any() || OverlapLabel(o) != "-" {
		t.Errorf("overlap on a device without a journal: %+v", o)
	}
	op.File.Dev = "7:0"
	op.Start, op.End = 111*ms, 114*ms
	if o := x.Overlap(op); o.Any() {
		t.Errorf("op between commits overlaps %+v", o)
	}
	// Old commits leave the window.
	late := bundle.JournalEvent{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: 3, Start: 5000 * ms, End: 5010 * ms}
	x.Add(&late)
	if n := len(x.byDev["7:0"]); n != 1 {
		t.Errorf("%d commits kept on 7:0, want 1", n)
	}

	js := NewJournals()
	for i := range commits {
		js.Add(&commits[i])
	}
	js.AddSync("7:0")
	js.AddOp(&bundle.FSOp{File: &bundle.FSFileInfo{Dev: "7:0"}}, Overlap{Commit: &commits[0]})
	js.AddOp(&bundle.FSOp{File: &bundle.FSFileInfo{Dev: "7:0"}}, Overlap{})
	devs := js.List(map[uint64]Mount{unix.Mkdev(7, 0): {MountPoint: "/k", FSType: "ext4"}})
	if len(devs) != 3 || devs[0].Dev != "7:0" || devs[0].Mount == nil || devs[0].Commits != 2 || devs[0].SyncCommits != 1 ||
		devs[0].Syncs != 1 || devs[0].SlowOps != 2 || devs[0].InJournal != 1 || devs[0].Slowest[0].Transaction != 2 ||
		devs[2].LogForces != 2 || devs[0].Locked != 4*time.Millisecond {
		t.Errorf("journals: %+v", devs)
	}
	var buf bytes.Buffer
	writeDevice(&buf, &devs[0])
	for _, want := range []string{"dev 7:0: /k ext4", "jbd2 commits: 2", "max 65.00ms", "slowest: #2 65.00ms", "2, of which 1 (50%)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("device summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestRecords(t *testing.T) {
	f := file("/k/t-3/00000000000000000000.log", "7:0", 12)
	ev := offcpu.FSEvent{TID: 5, TGID: 4, Op: offcpu.FSPwrite64, Ret: 4096, Start: 10, End: 30}
	got := OpRecord(&ev, f, "data-plane-kafka-request-handler-1")
	want := bundle.FSOp{Op: "pwrite64", File: f, TID: 5, TGID: 4, Thread: "data-plane-kafka-request-handler-1", Bytes: 4096, Start: 10, End: 30}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	ev.Ret = -28 // ENOSPC
	if got := OpRecord(&ev, f, ""); got.Errno != 28 || got.Bytes != 0 {
		t.Errorf("failed op: %+v", got)
	}
	j := offcpu.JournalEvent{Kind: offcpu.JournalJBD2Commit, Dev: unix.Mkdev(259, 3), Transaction: 77, Start: 1, End: 2,
		Flushing: time.Millisecond, Handles: 3}
	if got := JournalRecord(&j); got.Kind != bundle.JournalJBD2Commit || got.Dev != "259:3" || got.Transaction != 77 ||
		got.Flushing != time.Millisecond || got.Handles != 3 {
		t.Errorf("journal record %+v", got)
	}
	// The kinds the tracer names are the bundle's.
	for k, want := range map[offcpu.JournalKind]string{offcpu.JournalJBD2Commit: bundle.JournalJBD2Commit,
		offcpu.JournalXFSLogForce: bundle.JournalXFSLogForce, offcpu.JournalExt4SyncFile: bundle.JournalExt4SyncFile,
		offcpu.JournalXFSFileFsync: bundle.JournalXFSFileFsync} {
		if k.String() != want {
			t.Errorf("%v is %q in the bundle", k, want)
		}
	}
}

func TestPrinterAndSummary(t *testing.T) {
	f := file("/k/orders-0/00000000000000000000.log", "7:0", 12)
	var buf bytes.Buffer
	p := &Printer{W: &buf, Wall: func(uint64) time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC) }}
	c := bundle.JournalEvent{Kind: bundle.JournalJBD2Commit, Transaction: 9, Start: 0, End: uint64(30 * time.Millisecond)}
	ops := []bundle.FSOp{
		{Op: "write", File: f, TID: 77, Thread: "data-plane-kafka-request-handler-3", Bytes: 1 << 20, Start: 0, End: uint64(42 * time.Millisecond)},
		{Op: "fsync", File: f, TID: 78, Start: 0, End: uint64(time.Second + time.Millisecond)},
		{Op: "write", File: &bundle.FSFileInfo{Dev: "7:0", Ino: 5, Partition: -1}, TID: 79, Errno: 28, Start: 0, End: 1500},
	}
	if err := p.Op(&ops[0], Overlap{Commit: &c}); err != nil {
		t.Fatal(err)
	}
	p.Op(&ops[1], Overlap{LogForces: 1, ByThread: true})
	p.Op(&ops[2], Overlap{})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("output:\n%s", buf.String())
	}
	for i, want := range [][]string{
		{"03:04:05.006", "77", "data-plane-kafka-requ", "write", "orders-0/00000000000000000000.log", "1.0MiB", "42.00ms", "jbd2 commit #9 30.00ms"},
		{"78", "?", "fsync", " - ", "1.001s", "xfs log force x1 (by this thread)"},
		{"dev 7:0 ino 5", "errno 28", "1.5µs", " -"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %d lacks %q: %q", i+1, w, lines[i+1])
			}
		}
	}

	buf.Reset()
	s := &Summary{PID: 4, Duration: 10 * time.Second, Min: time.Millisecond,
		Groups:   Groups([]Histogram{hist("write", f, 10*time.Microsecond, 20*time.Microsecond, 5*time.Millisecond)}, SlowCounts{}),
		Devices:  []DeviceJournal{{Dev: "7:0"}},
		Counters: offcpu.FSCounters{Events: 3, Drops: 1}, Missing: []string{"xfs/xfs_log_force"}, Unresolved: 2}
	if err := WriteSummary(&buf, s); err != nil {
		t.Fatal(err)
	}
	var row []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "orders-0" {
			row = f
			break
		}
	}
	if want := []string{"orders-0", "write", "3", "300B", "5.03ms", "1.68ms", "24.6µs", "5.00ms", "5.00ms", "0", "log"}; !cmp.Equal(row, want) {
		t.Errorf("row %q, want %q", row, want)
	}
	for _, want := range []string{"pid 4 over 10s", "from 1.00ms", "\norders-0  ", "300B", "orders-0 write: 3 ops, 0 slow",
		"8.2µs .. 16.4µs", "dev 7:0: (not in the target's mounts)", "2 slow operations on files that could not be found",
		"xfs/xfs_log_force", "drops=1", "WARNING: data was lost"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestDurBytes(t *testing.T) {
	for d, want := range map[time.Duration]string{999: "999ns", 1500: "1.5µs", 2500 * time.Microsecond: "2.50ms", 3 * time.Second: "3.000s"} {
		if got := Dur(d); got != want {
			t.Errorf("Dur(%d) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 3 << 20: "3.0MiB", 5 << 30: "5.0GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// The resolver finds a file this process holds open through /proc/PID/fd,
// and one it wrote and closed in a directory next to a known file.
func TestResolver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	part := filepath.Join(dir, "orders-7")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	seg, err := os.Create(filepath.Join(part, "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(seg.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	r := NewResolver()
	f := r.File(os.Getpid(), st.Dev, st.Ino)
	want := &bundle.FSFileInfo{Path: seg.Name(), Dev: DevString(st.Dev), Ino: st.Ino, Topic: "orders", Partition: 7, Kind: KindLog}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("open segment (-want +got)\n%s", diff)
	}
	// A checkpoint written, closed and renamed, as Kafka does.
	tmp := filepath.Join(dir, "recovery-point-offset-checkpoint.tmp")
	if err := os.WriteFile(tmp, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cst unix.Stat_t
	if err := unix.Stat(tmp, &cst); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "recovery-point-offset-checkpoint")
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if f := r.File(os.Getpid(), cst.Dev, cst.Ino); f.Path != final || f.Kind != KindCheckpoint || f.Partition != -1 {
		t.Errorf("closed checkpoint resolved to %+v, want %s", f, final)
	}
	// Unknown inodes give an unresolved file, and are not rescanned at once.
	if f := r.File(os.Getpid(), st.Dev, 1<<40); f.Path != "" || f.Ino != 1<<40 || f.Partition != -1 {
		t.Errorf("unknown inode resolved to %+v", f)
	}
	if _, ok := r.misses[fileKey{os.Getpid(), st.Dev, 1 << 40}]; !ok {
		t.Error("miss not remembered")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "--pid"},
		{Options{PID: 1, Duration: -1}, "duration"},
		{Options{PID: 1, Min: -1}, "--min"},
		{Options{PID: 1, MaxFiles: -2}, "--max-files"},
		{Options{PID: os.Getpid()}, "itself"},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.o, err, tc.want)
		}
	}
	o := Options{PID: 1}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg := o.TracerConfig(); cfg.Min != offcpu.KeepAll || o.Hold == 0 {
		t.Errorf("--min 0 gives tracer min %v, hold %v", cfg.Min, o.Hold)
	}
	o.Min = 5 * time.Millisecond
	if cfg := o.TracerConfig(); cfg.Min != 5*time.Millisecond {
		t.Errorf("tracer min %v", cfg.Min)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("36 22 7:0 / /tmp/my\\040dir/mnt rw,relatime shared:5 - ext4 /dev/loop0 rw,data=writeback\n")
	f.Add("1 2 3\n")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseMountinfo(strings.NewReader(in))
		if err == nil && len(ms) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d mounts from %d lines", len(ms), strings.Count(in, "\n")+1)
		}
	})
}

func BenchmarkResolverHit(b *testing.B) {
	r := NewResolver()
	f, err := os.CreateTemp(b.TempDir(), "seg")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		b.Fatal(err)
	}
	pid := os.Getpid() // a system call: not in the loop
	if r.File(pid, st.Dev, st.Ino).Path == "" {
		b.Fatal("not resolved")
	}
	b.ReportAllocs()
	for b.Loop() {
		r.File(pid, st.Dev, st.Ino)
	}
}

// One slow operation against a minute of commits at 5/s on its device.
func BenchmarkOverlap(b *testing.B) {
	x := NewJournalIndex()
	ms := uint64(time.Millisecond)
	for i := range uint64(300) {
		x.Add(&bundle.JournalEvent{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Transaction: uint32(i), Start: i * 200 * ms, End: i*200*ms + 30*ms})
	}
	op := &bundle.FSOp{Op: "fsync", File: &bundle.FSFileInfo{Dev: "7:0"}, Start: 150*200*ms + 10*ms, End: 150*200*ms + 40*ms}
	b.ReportAllocs()
	for b.Loop() {
		if !x.Overlap(op).Any() {
			b.Fatal("no overlap")
		}
	}
}
