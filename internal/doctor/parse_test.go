package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/attach"
	"github.com/moby/sys/mountinfo"
)

func TestBrokerLogDirs(t *testing.T) {
	files := map[string]string{
		"/etc/kafka/server.properties":        "# broker\nbroker.id=1\nlog.dirs=/data/a, /data/b ,\\\n  /data/c\nlog.dir=/ignored\n",
		"/opt/kafka/config/server.properties": "log.dir : /var/kafka\n",
		"/etc/kafka/empty.properties":         "broker.id=2\n",
		"/etc/kafka/expand.properties":        "log.dirs=${HOME}/logs\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	java := []string{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-Xmx1G", "-cp", "/opt/kafka/libs/*", "-Dlog4j.configuration=file:x"}
	cmdline := func(args ...string) []string { return append(append([]string(nil), java...), args...) }
	tests := []struct {
		name string
		args []string
		want LogDirs
		err  string
	}{
		{"log.dirs wins over log.dir, with continuation", cmdline("kafka.Kafka", "/etc/kafka/server.properties"),
			LogDirs{[]string{"/data/a", "/data/b", "/data/c"}, "log.dirs in /etc/kafka/server.properties"}, ""},
		{"relative file, log.dir with colon", cmdline("kafka.Kafka", "config/server.properties"),
			LogDirs{[]string{"/var/kafka"}, "log.dir in /opt/kafka/config/server.properties"}, ""},
		{"override", cmdline("kafka.Kafka", "/etc/kafka/server.properties", "--override", "log.dirs=/x,y", "--override", "broker.id=3"),
			LogDirs{[]string{"/x", "/opt/kafka/y"}, "--override log.dirs"}, ""},
		{"override with equals", cmdline("kafka.Kafka", "/etc/kafka/empty.properties", "--override=log.dir=/z"),
			LogDirs{[]string{"/z"}, "--override log.dir"}, ""},
		{"no expansion", cmdline("kafka.Kafka", "/etc/kafka/expand.properties"),
			LogDirs{[]string{"/opt/kafka/${HOME}/logs"}, "log.dirs in /etc/kafka/expand.properties"}, ""},
		{"kafka default", cmdline("kafka.Kafka", "/etc/kafka/empty.properties"),
			LogDirs{[]string{"/tmp/kafka-logs"}, "Kafka's default log.dir (/etc/kafka/empty.properties sets neither log.dirs nor log.dir)"}, ""},
		{"missing file", cmdline("kafka.Kafka", "/nope.properties"), LogDirs{}, "reading the broker's configuration /nope.properties"},
		{"demo broker", cmdline("kafka.Kafka", "--port=0", "--log-dir=/mnt/logs", "--io-threads=8"),
			LogDirs{[]string{"/mnt/logs"}, "the demo broker's --log-dir"}, ""},
		{"demo broker, separate value", cmdline("kafka.Kafka", "--log-dir", "logs", "--port", "9092"),
			LogDirs{[]string{"/opt/kafka/logs"}, "the demo broker's --log-dir"}, ""},
		{"demo broker default", cmdline("kafka.Kafka", "--port=0"),
			LogDirs{[]string{demoDefaultLogDir}, "the demo broker's default --log-dir"}, ""},
		{"not kafka", cmdline("org.apache.zookeeper.server.quorum.QuorumPeerMain", "zoo.cfg"), LogDirs{}, "not a kafka.Kafka command line"},
		{"class name as classpath", []string{"java", "-cp", "kafka.Kafka", "Other"}, LogDirs{}, "not a kafka.Kafka command line"},
		{"not java", []string{"/bin/sh", "kafka.Kafka"}, LogDirs{}, "not a kafka.Kafka command line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := brokerLogDirs(tt.args, "/opt/kafka", read)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMountOf(t *testing.T) {
	mi := `26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 26 7:0 / /srv/kafka rw,relatime - ext4 /dev/loop0 rw,data=writeback
43 26 7:0 /sub /mnt/bind rw,relatime - ext4 /dev/loop0 rw,data=writeback
44 26 7:1 / /srv/kafka\040two rw,noatime - xfs /dev/loop1 rw
`
	mounts, err := mountinfo.GetMountsFromReader(strings.NewReader(mi), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path         string
		major, minor int
		want         string
	}{
		{"/srv/kafka/logs", 7, 0, "/srv/kafka"},
		{"/mnt/bind/x", 7, 0, "/mnt/bind"},
		{"/elsewhere", 7, 0, "/mnt/bind"}, // no prefix: the last mount of the device
		{"/srv/kafka two/logs", 7, 1, "/srv/kafka two"},
		{"/var/lib/kafka", 254, 0, "/"},
	} {
		m := mountOf(mounts, tt.path, tt.major, tt.minor)
		if m == nil || m.Mountpoint != tt.want {
			t.Errorf("mountOf(%s, %d:%d) = %+v, want %s", tt.path, tt.major, tt.minor, m, tt.want)
		}
	}
	if m := mountOf(mounts, "/x", 9, 9); m != nil {
		t.Errorf("unknown device: got %+v", m)
	}
}

// TestExt4Superblock reads superblocks that mkfs.ext4 and tune2fs wrote and
// checks them against dumpe2fs, the oracle.
func TestExt4Superblock(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "dumpe2fs", "tune2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run scripts/setup.sh (installs e2fsprogs)", tool)
		}
	}
	for _, tt := range []struct {
		name string
		mkfs []string
		tune []string
		want ext4Super
	}{
		{"default", nil, nil, ext4Super{HasJournal: true}},
		{"no journal", []string{"-O", "^has_journal"}, nil, ext4Super{}},
		{"fast_commit", []string{"-O", "fast_commit"}, nil, ext4Super{HasJournal: true, FastCommit: true}},
		{"writeback default", nil, []string{"-o", "journal_data_writeback"}, ext4Super{HasJournal: true, DefaultData: "writeback"}},
		{"journal default", nil, []string{"-o", "journal_data"}, ext4Super{HasJournal: true, DefaultData: "journal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "fs.img")
			run(t, "truncate", "-s", "16M", img)
			run(t, "mkfs.ext4", append(append([]string{"-q", "-F"}, tt.mkfs...), img)...)
			if tt.tune != nil {
				run(t, "tune2fs", append(tt.tune, img)...)
			}
			got, err := readExt4Super(img)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The oracle agrees.
			out := run(t, "dumpe2fs", "-h", img)
			features := ""
			for line := range strings.Lines(out) {
				if v, ok := strings.CutPrefix(line, "Filesystem features:"); ok {
					features = " " + strings.TrimSpace(v) + " "
				}
			}
			if strings.Contains(features, " has_journal ") != got.HasJournal || strings.Contains(features, " fast_commit ") != got.FastCommit {
				t.Errorf("dumpe2fs says features %q, lockscope read %+v", features, got)
			}
		})
	}
	if _, err := parseExt4Super(make([]byte, 100)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short superblock: %v", err)
	}
	if _, err := parseExt4Super(make([]byte, 1024)); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("zero superblock: %v", err)
	}
}

func TestJBD2AndFastCommitInfo(t *testing.T) {
	info := `1 transactions (1 requested), each up to 1365 blocks
average: 
  0ms waiting for transaction
  4ms running transaction
  1883us average transaction commit time
  5 handles per transaction
`
	st, err := parseJBD2Info([]byte(info))
	if err != nil || st.Transactions != 1 || st.AvgCommit != 1883*time.Microsecond {
		t.Errorf("parseJBD2Info = %+v, %v", st, err)
	}
	if _, err := parseJBD2Info([]byte("garbage")); err == nil {
		t.Error("parseJBD2Info(garbage): no error")
	}
	fc := "fc stats:\n12 commits\n3 ineligible\n40 numblks\n250us avg_commit_time\nIneligible reasons:\n\"Cross rename\":\t0\n"
	c, inel, err := parseFCInfo([]byte(fc))
	if err != nil || c != 12 || inel != 3 {
		t.Errorf("parseFCInfo = %d, %d, %v", c, inel, err)
	}
	if _, _, err := parseFCInfo([]byte("fc stats:\n")); err == nil {
		t.Error("parseFCInfo(empty): no error")
	}
}

func TestXFSInfo(t *testing.T) {
	out := `meta-data=/dev/loop0             isize=512    agcount=4, agsize=20480 blks
data     =                       bsize=4096   blocks=81920, imaxpct=25
log      =internal log           bsize=4096   blocks=16384, version=2
         =                       sectsz=512   sunit=0 blks, lazy-count=1
`
	l, err := parseXFSInfo([]byte(out))
	if err != nil || !l.Internal || l.Bytes != 64<<20 {
		t.Errorf("parseXFSInfo = %+v, %v", l, err)
	}
	ext := strings.Replace(out, "=internal log          ", "=/dev/sdb1", 1)
	if l, err := parseXFSInfo([]byte(ext)); err != nil || l.Internal {
		t.Errorf("external log: %+v, %v", l, err)
	}
	if _, err := parseXFSInfo(nil); err == nil {
		t.Error("parseXFSInfo(nil): no error")
	}
	for s, want := range map[string]int64{"32k": 32 << 10, "256K": 256 << 10, "262144": 262144, "1m": 1 << 20} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}

func TestAtime(t *testing.T) {
	for opts, want := range map[string]Status{"rw,noatime": Pass, "rw,relatime": Info, "rw": Warn, "rw,strictatime": Warn} {
		r := &Report{}
		atimeCheck(r, "/x", opts)
		if len(r.Checks) != 1 || r.Checks[0].Status != want {
			t.Errorf("atime %s: %+v, want %s", opts, r.Checks, want)
		}
	}
}

func TestReportOutput(t *testing.T) {
	r := &Report{}
	r.add(Pass, "btf", "present", "")
	r.add(Fail, "attach", "disabled\twith a tab", "restart it")
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := "PASS  btf     present\nFAIL  attach  disabled with a tab — restart it\n\n1 passed, 0 info, 0 warnings, 1 failed\n"
	if diff := cmp.Diff(want, text.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	if !strings.Contains(js.String(), `"status": "FAIL"`) {
		t.Errorf("JSON status not by name:\n%s", js.String())
	}
	var s Status
	if err := s.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("unknown status accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Options)
		err  string
	}{
		{"defaults", func(*Options) {}, ""},
		{"negative pid", func(o *Options) { o.PID = -1 }, "must be positive"},
		{"pid and no-jvm", func(o *Options) { o.PID = 5; o.NoJVM = true }, "contradict"},
		{"timeout", func(o *Options) { o.Timeout = 0 }, "timeout"},
		{"empty log dir", func(o *Options) { o.LogDirs = []string{" "} }, "empty log dir"},
		{"attach", func(o *Options) { o.Attach.ListenerTimeout = 0 }, "listener timeout"},
	} {
		o := DefaultOptions()
		tt.mod(&o)
		err := o.Validate()
		if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}
	o := DefaultOptions()
	o.LogDirs = []string{"rel"}
	if err := o.Validate(); err != nil || !filepath.IsAbs(o.LogDirs[0]) {
		t.Errorf("relative log dir not made absolute: %v, %v", o.LogDirs, err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPrivileges(t *testing.T) {
	all := uint64(1<<capBPF | 1<<capPerfmon | 1<<capSysAdmin | 1<<capSyslog)
	for _, tt := range []struct {
		euid int
		caps uint64
		want Status
		sub  string
	}{
		{0, all, Pass, "root with CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"},
		{1000, 1<<capBPF | 1<<capPerfmon, Warn, "uid 1000 with CAP_BPF, CAP_PERFMON (missing CAP_SYS_ADMIN)"},
		{1000, 1 << capSysAdmin, Warn, "missing CAP_BPF, CAP_PERFMON"},
		{1000, 1 << capBPF, Fail, "neither"},
		{1000, 0, Fail, "uid 1000 without capabilities"},
		{0, 1 << capSysAdmin, Warn, "root with CAP_SYS_ADMIN"}, // root in a restricted container
	} {
		c := judgePrivileges(tt.euid, tt.caps)
		if c.Status != tt.want || !strings.Contains(c.Detail, tt.sub) || c.Status != Pass && c.Fix == "" {
			t.Errorf("judgePrivileges(%d, %#x) = %+v, want %s containing %q and a fix", tt.euid, tt.caps, c, tt.want, tt.sub)
		}
	}
	// This process's own status file parses.
	if _, err := effectiveCaps("/proc/self/status"); err != nil {
		t.Error(err)
	}
	if _, err := effectiveCaps("/proc/self/cmdline"); err == nil {
		t.Error("a file without CapEff parsed")
	}
}

func TestKallsyms(t *testing.T) {
	dir := t.TempDir()
	hidden := filepath.Join(dir, "hidden")
	os.WriteFile(hidden, []byte("0000000000000000 A fixed_percpu_data\n0000000000000000 T _stext\n"), 0o644)
	shown := filepath.Join(dir, "shown")
	os.WriteFile(shown, []byte("0000000000000000 A fixed_percpu_data\nffffffff81000000 T _stext\n"), 0o644)
	if ok, err := kallsymsReadable(hidden); ok || err != nil {
		t.Errorf("zero addresses: %v, %v", ok, err)
	}
	if ok, err := kallsymsReadable(shown); !ok || err != nil {
		t.Errorf("real addresses: %v, %v", ok, err)
	}
	if _, err := kallsymsReadable(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestMatchRow(t *testing.T) {
	rows := []ExperimentRow{{Name: "ext4-ordered"}, {Name: "ext4-writeback"}, {Name: "ext4-fast_commit"}, {Name: "xfs"}, {Name: "ext4-nojournal"}}
	yes, no := true, false
	for _, tt := range []struct {
		fs   Filesystem
		want string
	}{
		{Filesystem{Type: "ext4", Journal: &yes, DataMode: "ordered", FastCommit: &no}, "ext4-ordered"},
		{Filesystem{Type: "ext4", Journal: &yes, DataMode: "writeback", FastCommit: &no}, "ext4-writeback"},
		{Filesystem{Type: "ext4", Journal: &yes, DataMode: "ordered", FastCommit: &yes}, "ext4-fast_commit"},
		{Filesystem{Type: "ext4", Journal: &no}, "ext4-nojournal"},
		{Filesystem{Type: "xfs"}, "xfs"},
		{Filesystem{Type: "btrfs"}, ""},
		{Filesystem{Type: "ext4", Journal: &yes, DataMode: "journal", FastCommit: &no}, ""},
	} {
		got := ""
		if i := matchRow(tt.fs, rows); i >= 0 {
			got = rows[i].Name
		}
		if got != tt.want {
			t.Errorf("matchRow(%+v) = %q, want %q", tt.fs, got, tt.want)
		}
	}
}

func TestOptionFlags(t *testing.T) {
	args := []string{"/usr/bin/java", "-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions", "-cp", "x", "kafka.Kafka", "-XX:-PreserveFramePointer"}
	env := []byte("JAVA_TOOL_OPTIONS=-XX:+DebugNonSafepoints\x00_JAVA_OPTIONS=-XX:+DisableAttachMechanism\x00PATH=/bin\x00")
	got := optionFlags(args, env, "/", nil)
	for name, want := range map[string]string{
		"PreserveFramePointer":      "true", // the program's own argument after the class is not an option
		"UnlockDiagnosticVMOptions": "true",
		"DebugNonSafepoints":        "true",
		"DisableAttachMechanism":    "true",
	} {
		if got[name].Value != want || got[name].Origin != "from the JVM's options" {
			t.Errorf("%s = %+v, want %s from the options", name, got[name], want)
		}
	}
	got = optionFlags([]string{"java", "-cp", "x", "kafka.Kafka"}, nil, "/", nil)
	if f := got["PreserveFramePointer"]; f.Value != "false" || !strings.Contains(f.Origin, "default") {
		t.Errorf("unset flag: %+v", f)
	}
	if _, ok := got["DebugNonSafepoints"]; ok {
		t.Error("a diagnostic flag shown without UnlockDiagnosticVMOptions")
	}

	// Files: a flags file is applied first, the command line after it;
	// argument files and VM options files in place.
	files := map[string]string{
		"/srv/flags":     "+DisableAttachMechanism\n+PreserveFramePointer\n",
		"/srv/kafka.arg": "-XX:+UnlockDiagnosticVMOptions\n-XX:+DebugNonSafepoints\n",
		"/etc/vm.opts":   "-XX:+PreserveFramePointer",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	got = optionFlags([]string{"java", "-XX:Flags=flags", "-XX:-PreserveFramePointer", "@kafka.arg", "kafka.Kafka"}, nil, "/srv", read)
	for name, want := range map[string]string{"DisableAttachMechanism": "true", "PreserveFramePointer": "false", "DebugNonSafepoints": "true"} {
		if got[name].Value != want {
			t.Errorf("with files: %s = %+v, want %s", name, got[name], want)
		}
	}
	got = optionFlags([]string{"java", "-XX:VMOptionsFile=/etc/vm.opts", "kafka.Kafka"}, nil, "/", read)
	if got["PreserveFramePointer"].Value != "true" {
		t.Errorf("VMOptionsFile: %+v", got["PreserveFramePointer"])
	}
}

func TestTracefs(t *testing.T) {
	empty, mounted := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(mounted, "events", "sched"), 0o755)
	r := &Report{}
	tracefsIn(r, empty, mounted)
	if len(r.Checks) != 1 || r.Checks[0].Status != Pass || !strings.Contains(r.Checks[0].Detail, mounted+" is mounted (1 event systems)") {
		t.Errorf("second place mounted: %+v", r.Checks)
	}
	r = &Report{}
	tracefsIn(r, empty)
	if len(r.Checks) != 1 || r.Checks[0].Status != Warn || r.Checks[0].Fix != "mount -t tracefs nodev "+empty {
		t.Errorf("unmounted: %+v", r.Checks)
	}
}

// TestFindBroker reads a fake /proc: one broker, none, two, and processes
// that only look like one.
func TestFindBroker(t *testing.T) {
	proc := func(cmdlines map[string]string) string {
		dir := t.TempDir()
		for pid, c := range cmdlines {
			os.MkdirAll(filepath.Join(dir, pid), 0o755)
			os.WriteFile(filepath.Join(dir, pid, "cmdline"), []byte(strings.ReplaceAll(c, " ", "\x00")+"\x00"), 0o644)
		}
		os.MkdirAll(filepath.Join(dir, "self"), 0o755)
		return dir
	}
	kafka := "/usr/bin/java -Xmx1G -cp /opt/kafka/libs/* kafka.Kafka /etc/kafka/server.properties"
	others := map[string]string{
		"10": "/usr/bin/java -cp x org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg",
		"11": "grep kafka.Kafka",
		"12": "/usr/bin/java -jar kafka.Kafka",
	}
	one := map[string]string{"20": kafka}
	for k, v := range others {
		one[k] = v
	}
	r := &Report{}
	if pid := findBroker(r, proc(one)); pid != 20 || len(r.Checks) != 0 {
		t.Errorf("one broker: pid %d, %+v", pid, r.Checks)
	}
	r = &Report{}
	if pid := findBroker(r, proc(others)); pid != 0 || len(r.Checks) != 1 || r.Checks[0].Status != Info {
		t.Errorf("no broker: pid %d, %+v", pid, r.Checks)
	}
	r = &Report{}
	if pid := findBroker(r, proc(map[string]string{"30": kafka, "31": kafka})); pid != 0 || len(r.Checks) != 1 ||
		r.Checks[0].Status != Warn || !strings.Contains(r.Checks[0].Detail, "pids 30, 31") {
		t.Errorf("two brokers: pid %d, %+v", pid, r.Checks)
	}
}

func TestFlagChecks(t *testing.T) {
	flags := func(kv ...string) map[string]attach.Flag {
		m := map[string]attach.Flag{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = attach.Flag{Type: "bool", Value: kv[i+1], Origin: "command line"}
		}
		return m
	}
	for _, tt := range []struct {
		name string
		info attach.Info
		want map[string]Status
	}{
		{"jdk 17 all set", attach.Info{Feature: 17, Flags: flags("PreserveFramePointer", "true", "DebugNonSafepoints", "true", "DisableAttachMechanism", "false")},
			map[string]Status{"PreserveFramePointer": Pass, "DebugNonSafepoints": Pass, "DisableAttachMechanism": Pass}},
		{"jdk 11 defaults", attach.Info{Feature: 11, Flags: flags("PreserveFramePointer", "false", "DisableAttachMechanism", "false")},
			map[string]Status{"PreserveFramePointer": Warn, "DebugNonSafepoints": Warn, "DisableAttachMechanism": Pass, "perf map": Warn}},
		{"jdk 8 before 8u60", attach.Info{Feature: 8, Flags: flags("DisableAttachMechanism", "true")},
			map[string]Status{"PreserveFramePointer": Info, "DebugNonSafepoints": Warn, "DisableAttachMechanism": Fail, "perf map": Warn}},
	} {
		r := &Report{}
		flagChecks(r, &tt.info)
		got := map[string]Status{}
		for _, c := range r.Checks {
			got[c.Name] = c.Status
			if c.Status >= Warn && c.Fix == "" {
				t.Errorf("%s: %s without a fix", tt.name, c.Name)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
