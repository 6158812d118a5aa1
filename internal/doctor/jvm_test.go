package doctor

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach/jvmtest"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/loopfs"
)

func jvmOptions(pid int) Options {
	o := DefaultOptions()
	o.PID, o.SkipBPFLoad = pid, true
	return o
}

func TestDoctorJVMFlags(t *testing.T) {
	needRoot(t)
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		fp, dns Status
	}{
		{"defaults", nil, Warn, Warn},
		{"frame pointers and debug info", []string{"-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions", "-XX:+DebugNonSafepoints"}, Pass, Pass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := jvmtest.Start(t, jvmtest.Config{JVMArgs: tt.args})
			r := runDoctor(t, jvmOptions(j.PID))
			t.Logf("\n%s", text(r))
			want(t, r, Pass, "jvm", "is a HotSpot JVM")
			want(t, r, Pass, "attach", "JDK 17")
			c := want(t, r, tt.fp, "PreserveFramePointer", "")
			if tt.fp == Warn && !strings.Contains(c.Fix, "-XX:+PreserveFramePointer") {
				t.Errorf("no fix: %+v", c)
			}
			c = want(t, r, tt.dns, "DebugNonSafepoints", "")
			if tt.dns == Warn && !strings.Contains(c.Fix, "-XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints") {
				t.Errorf("no fix: %+v", c)
			}
			want(t, r, Pass, "DisableAttachMechanism", "false")
			want(t, r, Pass, "jfr", "available")
			// The test program is no broker: its log dirs are unknown.
			want(t, r, Info, "log dirs", "does not run kafka.Kafka")
			if r.Count(Fail) != 0 {
				t.Errorf("failed checks on an attachable JVM:\n%s", text(r))
			}
			if !j.Alive() {
				t.Error("the JVM died during doctor")
			}
		})
	}
}

func TestDoctorAttachDisabled(t *testing.T) {
	needRoot(t)
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{JVMArgs: []string{"-XX:+DisableAttachMechanism"}})
	r := runDoctor(t, jvmOptions(j.PID))
	t.Logf("\n%s", text(r))
	want(t, r, Pass, "jvm", "is a HotSpot JVM")
	c := want(t, r, Fail, "attach", "DisableAttachMechanism")
	if !strings.Contains(c.Fix, "restart the broker without -XX:+DisableAttachMechanism") {
		t.Errorf("attach failure without its fix: %+v", c)
	}
	// The flags are read from the JVM's options instead.
	want(t, r, Fail, "DisableAttachMechanism", "true (from the JVM's options)")
	want(t, r, Warn, "PreserveFramePointer", "false (default, per the JVM's options)")
	if !j.Alive() {
		t.Error("the JVM died: doctor must not signal a JVM whose attach mechanism is off")
	}
}

func TestDoctorNotJVM(t *testing.T) {
	needRoot(t)
	t.Parallel()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := runDoctor(t, jvmOptions(cmd.Process.Pid))
	c := want(t, r, Fail, "jvm", "(sleep): not a HotSpot JVM: libjvm.so is not mapped")
	if !strings.Contains(c.Fix, "pgrep -f kafka.Kafka") {
		t.Errorf("no fix: %+v", c)
	}
	if len(find(r, "attach", "")) != 0 || len(find(r, "log dir", "")) != 0 {
		t.Errorf("attach or log dirs checked on a process that is no JVM:\n%s", text(r))
	}
	if cmd.ProcessState != nil {
		t.Error("sleep ended: doctor signalled it")
	}
}

func TestDoctorNoProcess(t *testing.T) {
	t.Parallel()
	// No pid reaches pid_max.
	max, err := sysctlInt("kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	r := runDoctor(t, jvmOptions(max))
	want(t, r, Fail, "jvm", strconv.Itoa(max)+": no such process")
}

// TestDoctorDemoBroker runs lockscope's demo broker with its log dir on a
// loop-mounted ext4 and checks that doctor finds the broker, reads its
// --log-dir from the command line and judges that filesystem.
func TestDoctorDemoBroker(t *testing.T) {
	needRoot(t)
	t.Parallel()
	mnt := loopfs.Mount(t, loopfs.Options{})
	logs := filepath.Join(mnt, "kafka-logs")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: logs, IOThreads: 2, NetworkThreads: 1, JVMArgs: []string{"-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	pids, err := FindBrokers("/proc")
	if err != nil || !slices.Contains(pids, b.Pid()) {
		t.Fatalf("FindBrokers = %v, %v; want the demo broker's pid %d among them", pids, err, b.Pid())
	}
	o := jvmOptions(b.Pid())
	o.SkipBPFLoad = false // the off-CPU program is loaded for the broker
	r := runDoctor(t, o)
	t.Logf("\n%s", text(r))
	want(t, r, Pass, "off-cpu collector", "loads")
	want(t, r, Pass, "attach", "JDK 17")
	want(t, r, Info, "log dir", logs+" (the demo broker's --log-dir) on ext4")
	want(t, r, Info, "ext4 journal", mnt+": jbd2")
	want(t, r, Warn, "ext4 data mode", mnt+": data=ordered")
	if !slices.Equal(r.LogDirs, []string{logs}) {
		t.Errorf("report's log dirs %v, want [%s]", r.LogDirs, logs)
	}
}

// kafkaSource is a stand-in for Kafka's main class: a JVM whose command
// line has Kafka's shape (kafka.Kafka server.properties --override ...).
const kafkaSource = `package kafka;
public class Kafka {
    public static void main(String[] args) throws Exception {
        System.out.println("ready");
        System.in.read();
    }
}
`

// TestDoctorKafkaCommandLine starts a JVM with Kafka's command line: a
// relative server.properties (read through /proc/PID/root, relative to the
// JVM's working directory) naming a log dir on XFS and a relative one on
// the root filesystem, and an --override that doctor must prefer.
func TestDoctorKafkaCommandLine(t *testing.T) {
	needRoot(t)
	t.Parallel()
	xfs := loopfs.Mount(t, loopfs.Options{Type: "xfs"})
	work := t.TempDir()
	classes := filepath.Join(work, "classes")
	src := filepath.Join(work, "Kafka.java")
	if err := os.WriteFile(src, []byte(kafkaSource), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "javac", "-d", classes, src)
	if err := os.MkdirAll(filepath.Join(work, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	props := "broker.id=0\nlog.dirs=" + xfs + "/wrong\n# comment\nnum.partitions=1\n"
	if err := os.WriteFile(filepath.Join(work, "config", "server.properties"), []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(xfs, "logs"), filepath.Join(work, "data")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("java", "-Xmx32m", "-XX:+UseSerialGC", "-cp", classes, "kafka.Kafka",
		"config/server.properties", "--override", "log.dirs="+xfs+"/logs,data", "--override", "broker.id=1")
	cmd.Dir = work
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("java: %q, %v", line, err)
	}

	r := runDoctor(t, jvmOptions(cmd.Process.Pid))
	t.Logf("\n%s", text(r))
	want(t, r, Pass, "attach", "JDK 17")
	wantDirs := []string{xfs + "/logs", work + "/data"}
	if !slices.Equal(r.LogDirs, wantDirs) {
		t.Errorf("log dirs %v, want %v", r.LogDirs, wantDirs)
	}
	want(t, r, Info, "log dir", xfs+"/logs (--override log.dirs) on xfs")
	want(t, r, Pass, "xfs", xfs)
	want(t, r, Info, "log dir", work+"/data (--override log.dirs) on ext4")

	// Without the override, the file's log.dirs is read.
	dirs, err := brokerLogDirs([]string{"java", "-cp", classes, "kafka.Kafka", "config/server.properties"}, work,
		func(p string) ([]byte, error) {
			return os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/root" + p)
		})
	if err != nil || !slices.Equal(dirs.Dirs, []string{xfs + "/wrong"}) || !strings.Contains(dirs.Source, work+"/config/server.properties") {
		t.Errorf("from the file: %+v, %v", dirs, err)
	}
}

// TestDoctorMountNamespace runs a Kafka-shaped JVM in a mount namespace of
// its own where its log dir is a tmpfs that the host does not see: doctor
// must judge the filesystem the broker writes to, not the host's view of
// the same path.
func TestDoctorMountNamespace(t *testing.T) {
	needRoot(t)
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare not found: install util-linux")
	}
	work := t.TempDir()
	classes := filepath.Join(work, "classes")
	src := filepath.Join(work, "Kafka.java")
	if err := os.WriteFile(src, []byte(kafkaSource), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "javac", "-d", classes, src)
	logs := filepath.Join(work, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "mount -t tmpfs lockscope-doctor-test " + logs + " && exec java -Xmx32m -XX:+UseSerialGC -cp " + classes +
		" kafka.Kafka --override log.dirs=" + logs
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("java: %q, %v", line, err)
	}

	r := runDoctor(t, jvmOptions(cmd.Process.Pid)) // unshare and sh exec'd into java
	t.Logf("\n%s", text(r))
	want(t, r, Pass, "attach", "JDK 17")
	want(t, r, Info, "log dir", logs+" (--override log.dirs) on tmpfs lockscope-doctor-test")
	want(t, r, Warn, "filesystem", "tmpfs keeps the logs in memory")
}

// TestDoctorOtherUser checks a JVM running as another user: attach takes
// its credentials, and the report says whose they were.
func TestDoctorOtherUser(t *testing.T) {
	needRoot(t)
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{User: "lockscope-test"})
	r := runDoctor(t, jvmOptions(j.PID))
	uid, _ := jvmtest.EnsureUser(t, "lockscope-test")
	want(t, r, Pass, "attach", "attached as uid "+strconv.Itoa(int(uid)))
	if r.Count(Fail) != 0 {
		t.Errorf("failed checks:\n%s", text(r))
	}
}

// TestDoctorAttachDisabledInFlagsFile disables attach where lockscope
// cannot see it beforehand, in a -XX:Flags file: the listener never
// starts, the attach check fails with its fix, the JVM survives the
// SIGQUIT and its other flags are judged from its options.
func TestDoctorAttachDisabledInFlagsFile(t *testing.T) {
	needRoot(t)
	t.Parallel()
	flags := filepath.Join(t.TempDir(), "flags")
	if err := os.WriteFile(flags, []byte("+DisableAttachMechanism\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := jvmtest.Start(t, jvmtest.Config{JVMArgs: []string{"-XX:Flags=" + flags, "-XX:+PreserveFramePointer"}})
	o := jvmOptions(j.PID)
	o.Attach.ListenerTimeout = 2 * time.Second
	r := runDoctor(t, o)
	t.Logf("\n%s", text(r))
	c := want(t, r, Fail, "attach", "attach listener not started")
	if !strings.Contains(c.Fix, "DisableAttachMechanism from a flags file") {
		t.Errorf("no fix naming the likely cause: %+v", c)
	}
	// The flags file is read through /proc/PID/root.
	want(t, r, Fail, "DisableAttachMechanism", "true (from the JVM's options)")
	want(t, r, Pass, "PreserveFramePointer", "true (from the JVM's options)")
	if !j.Alive() {
		t.Error("the JVM died of the SIGQUIT")
	}
}
