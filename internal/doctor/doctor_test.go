package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/loopfs"
)

// needRoot skips tests that read other processes, load BPF or mount.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: doctor's real checks read root-only files, load BPF and mount loop devices (CI runs as root)")
	}
}

func runDoctor(t *testing.T, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// find returns the checks named name whose detail contains sub.
func find(r *Report, name, sub string) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Name == name && strings.Contains(c.Detail, sub) {
			out = append(out, c)
		}
	}
	return out
}

// want fails unless exactly one check named name with sub in its detail
// has status s; it returns that check.
func want(t *testing.T, r *Report, s Status, name, sub string) Check {
	t.Helper()
	cs := find(r, name, sub)
	if len(cs) != 1 || cs[0].Status != s {
		t.Fatalf("want one %s %q check containing %q, got %+v\nreport:\n%s", s, name, sub, cs, text(r))
	}
	return cs[0]
}

func text(r *Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

func TestDoctorHost(t *testing.T) {
	needRoot(t)
	t.Parallel()
	o := DefaultOptions()
	o.NoJVM = true
	r := runDoctor(t, o)
	t.Logf("\n%s", text(r))
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("no BTF: /sys/kernel/btf/vmlinux missing")
	}
	want(t, r, Pass, "btf", "")
	want(t, r, Pass, "privileges", "root")
	want(t, r, Pass, "off-cpu collector", "loads and attaches")

	// The sysctls as the kernel has them.
	paranoid, err := sysctlInt("kernel/perf_event_paranoid")
	if err != nil {
		t.Fatal(err)
	}
	want(t, r, map[bool]Status{true: Pass, false: Info}[paranoid <= 1], "perf_event_paranoid", strconv.Itoa(paranoid)+":")
	kptr, err := sysctlInt("kernel/kptr_restrict")
	if err != nil {
		t.Fatal(err)
	}
	// Root (with CAP_SYSLOG) sees addresses unless kptr_restrict is 2.
	want(t, r, map[bool]Status{true: Pass, false: Fail}[kptr < 2], "kptr_restrict", "kptr_restrict="+strconv.Itoa(kptr))
	if _, err := os.Stat("/sys/kernel/tracing/events/sched"); err == nil {
		want(t, r, Pass, "tracefs", "/sys/kernel/tracing")
	}
	if r.Count(Fail) != 0 {
		t.Errorf("this VM should pass every host check:\n%s", text(r))
	}
}

// TestDoctorRootFS checks the VM's root filesystem, which has no journal,
// against what the kernel says of it independently of doctor's code.
func TestDoctorRootFS(t *testing.T) {
	needRoot(t)
	t.Parallel()
	var st struct{ fstype, source string }
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "/" {
			st.source, st.fstype = f[0], f[2]
		}
	}
	if st.fstype != "ext4" {
		t.Skipf("the root filesystem is %s, not ext4", st.fstype)
	}
	dev := filepath.Base(st.source)
	task, _ := os.ReadFile("/sys/fs/ext4/" + dev + "/journal_task")
	jbd2, _ := filepath.Glob("/proc/fs/jbd2/" + dev + "-*")
	hasJournal := len(jbd2) > 0
	if hasJournal == (strings.TrimSpace(string(task)) == "<none>") {
		t.Fatalf("the kernel contradicts itself: journal_task %q, jbd2 dirs %v", task, jbd2)
	}

	o := DefaultOptions()
	o.NoJVM, o.SkipBPFLoad = true, true
	o.LogDirs = []string{t.TempDir()}
	r := runDoctor(t, o)
	t.Logf("\n%s", text(r))
	want(t, r, Info, "log dir", "on ext4 "+st.source+" mounted at /")
	if hasJournal {
		want(t, r, Info, "ext4 journal", "/: jbd2")
		return
	}
	want(t, r, Info, "ext4 journal", "/: none")
	if len(find(r, "ext4 data mode", "")) != 0 {
		t.Errorf("a data mode judged on a filesystem without a journal:\n%s", text(r))
	}
}

func TestDoctorExt4(t *testing.T) {
	needRoot(t)
	t.Parallel()
	for _, tt := range []struct {
		name  string
		o     loopfs.Options
		mode  Status
		modeS string
		fc    Status
	}{
		{"ordered", loopfs.Options{Mount: "commit=10"}, Warn, "data=ordered", Warn},
		{"writeback fast_commit", loopfs.Options{Mount: "data=writeback", Mkfs: []string{"-O", "fast_commit"}}, Pass, "data=writeback", Pass},
		{"journal", loopfs.Options{Mount: "data=journal,noatime"}, Warn, "data=journal", Warn},
		{"no journal", loopfs.Options{Mkfs: []string{"-O", "^has_journal"}}, 0, "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mnt := loopfs.Mount(t, tt.o)
			logs := filepath.Join(mnt, "logs")
			if err := os.Mkdir(logs, 0o755); err != nil {
				t.Fatal(err)
			}
			// A journal commit, so jbd2's statistics have something.
			if err := os.WriteFile(filepath.Join(logs, "00000.log"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			exec.Command("sync", "-f", logs).Run()

			o := DefaultOptions()
			o.NoJVM, o.SkipBPFLoad = true, true
			o.LogDirs = []string{logs}
			r := runDoctor(t, o)
			t.Logf("\n%s", text(r))
			want(t, r, Info, "log dir", "mounted at "+mnt)
			if len(r.Filesystems) != 1 || r.Filesystems[0].Mountpoint != mnt || r.Filesystems[0].Journal == nil {
				t.Fatalf("filesystems: %+v", r.Filesystems)
			}
			fs := r.Filesystems[0]
			if tt.modeS == "" {
				want(t, r, Info, "ext4 journal", mnt+": none (made without has_journal)")
				if *fs.Journal || len(find(r, "ext4 data mode", "")) != 0 {
					t.Errorf("journal judged on a filesystem without one: %+v\n%s", fs, text(r))
				}
				return
			}
			want(t, r, Info, "ext4 journal", mnt+": jbd2")
			if !*fs.Journal || "data="+fs.DataMode != tt.modeS || fs.FastCommit == nil || *fs.FastCommit != (tt.fc == Pass) {
				t.Errorf("filesystem record %+v disagrees with the checks", fs)
			}
			c := want(t, r, tt.mode, "ext4 data mode", tt.modeS)
			if tt.mode == Warn && !strings.Contains(c.Fix, "82%") {
				t.Errorf("data mode advice lacks the investigation's numbers: %+v", c)
			}
			want(t, r, tt.fc, "ext4 fast_commit", mnt)
			interval := "commit=5 s (default)"
			if strings.Contains(tt.o.Mount, "commit=10") {
				interval = "commit=10 s"
			}
			want(t, r, Info, "ext4 commit", interval)
			want(t, r, map[bool]Status{true: Pass, false: Info}[strings.Contains(tt.o.Mount, "noatime")], "atime", mnt)
		})
	}
}

func TestDoctorXFS(t *testing.T) {
	needRoot(t)
	t.Parallel()
	mnt := loopfs.Mount(t, loopfs.Options{Type: "xfs"})
	o := DefaultOptions()
	o.NoJVM, o.SkipBPFLoad = true, true
	o.LogDirs = []string{mnt}
	r := runDoctor(t, o)
	t.Logf("\n%s", text(r))
	want(t, r, Info, "log dir", "on xfs")
	want(t, r, Pass, "xfs", "82%")
	// mkfs.xfs gives a 320 MiB filesystem a 64 MiB internal log (16384
	// blocks of 4 KiB); xfs_info is what doctor read it from.
	out := run(t, "xfs_info", mnt)
	l, err := parseXFSInfo([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want(t, r, Info, "xfs log", "internal log of "+strconv.FormatInt(l.Bytes>>20, 10)+" MiB")
	if len(find(r, "ext4 journal", "")) != 0 {
		t.Errorf("ext4 checks on XFS:\n%s", text(r))
	}
}

func TestDoctorMissingLogDir(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.NoJVM, o.SkipBPFLoad = true, true
	o.LogDirs = []string{filepath.Join(t.TempDir(), "nope")}
	r := runDoctor(t, o)
	c := want(t, r, Warn, "log dir", "nope")
	if !strings.Contains(c.Detail, "no such file") || !strings.Contains(c.Fix, "create it") {
		t.Errorf("missing dir: %+v", c)
	}
}
