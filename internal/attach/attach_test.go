package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/attach/jvmtest"
)

// helperEnv makes the test binary attach to the pid it names and print
// the outcome, so that tests can attach as another user.
const helperEnv = "LOCKSCOPE_ATTACH_TEST_HELPER"

func TestMain(m *testing.M) {
	if pid := os.Getenv(helperEnv); pid != "" {
		n, _ := strconv.Atoi(pid)
		vm, err := Open(n, DefaultOptions())
		if err == nil {
			_, err = vm.Jcmd(context.Background(), "VM.version")
		}
		fmt.Println("result:", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func open(t *testing.T, pid int) *VM {
	t.Helper()
	vm, err := Open(pid, DefaultOptions())
	if err != nil {
		t.Fatalf("Open(%d): %v", pid, err)
	}
	return vm
}

func jcmd(t *testing.T, vm *VM, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := vm.Jcmd(ctx, command)
	if err != nil {
		t.Fatalf("jcmd %s: %v", command, err)
	}
	return out
}

// TestAttach runs commands in one JVM of the test's own user, then plays an
// impostor and a /tmp cleaner against it.
func TestAttach(t *testing.T) {
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{})
	vm := open(t, j.PID)
	if vm.NSPID != j.PID {
		t.Errorf("NSPID = %d, want the host pid %d outside containers", vm.NSPID, j.PID)
	}

	t.Run("VM.version", func(t *testing.T) {
		start := time.Now()
		out := jcmd(t, vm, "VM.version")
		t.Logf("first attach + VM.version: %v", time.Since(start))
		if !strings.Contains(out, "OpenJDK") || !strings.Contains(out, "JDK ") {
			t.Errorf("VM.version output %q lacks OpenJDK and JDK lines", out)
		}
		start = time.Now()
		jcmd(t, vm, "VM.version")
		t.Logf("attached VM.version: %v", time.Since(start))
	})

	t.Run("trigger removed", func(t *testing.T) {
		name := ".attach_pid" + strconv.Itoa(j.PID)
		for _, dir := range []string{j.Cmd.Dir, "/tmp"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("trigger file %s left in %s", name, dir)
			}
		}
	})

	t.Run("Thread.print", func(t *testing.T) {
		out := jcmd(t, vm, "Thread.print")
		for _, want := range []string{`"request-handler-0"`, `"cpu-spinner"`, "java.lang.Thread.State:", "Busy.handle"} {
			if !strings.Contains(out, want) {
				t.Errorf("Thread.print lacks %q", want)
			}
		}
	})

	t.Run("Info", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		info, err := vm.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Feature < 8 || !strings.Contains(info.VM, "VM version") {
			t.Errorf("version: VM %q JDK %q feature %d", info.VM, info.JDK, info.Feature)
		}
		for name, want := range map[string]string{"PreserveFramePointer": "false", "DisableAttachMechanism": "false", "UseSerialGC": ""} {
			f, ok := info.Flags[name]
			switch {
			case want == "" && ok:
				t.Errorf("flag %s kept, want only relevant flags", name)
			case want != "" && (!ok || f.Value != want || f.Origin != "default"):
				t.Errorf("flag %s = %+v, want value %s from default", name, f, want)
			}
		}
		var handlers int
		for _, th := range info.Threads {
			if strings.HasPrefix(th.Name, "request-handler-") {
				handlers++
				if !th.Daemon || th.JavaID == 0 || th.NID != th.HostTID {
					t.Errorf("thread %+v: want a daemon Java thread with NID = HostTID", th)
				}
				if _, err := os.Stat("/proc/" + strconv.Itoa(j.PID) + "/task/" + strconv.Itoa(th.HostTID)); err != nil {
					t.Errorf("thread %s: host tid %d is not a thread of the JVM: %v", th.Name, th.HostTID, err)
				}
			}
		}
		if handlers != 4 {
			t.Errorf("found %d request-handler threads, want 4", handlers)
		}
	})

	t.Run("unknown command", func(t *testing.T) {
		_, err := vm.Jcmd(context.Background(), "No.such.command")
		var ce *CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Output, "Unknown diagnostic command") || ce.Code == 0 {
			t.Fatalf("got %v, want a CommandError saying the command is unknown", err)
		}
	})

	t.Run("load missing agent", func(t *testing.T) {
		_, err := vm.Load(context.Background(), "/nonexistent/libnothing.so", true, "start")
		var ce *CommandError
		if !errors.As(err, &ce) {
			t.Fatalf("got %v, want a CommandError", err)
		}
		t.Logf("JVM said: %v", err)
	})

	sock := vm.socketPath()
	t.Run("impostor socket refused", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("not root: cannot create a socket owned by another user")
		}
		if err := os.Remove(sock); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := os.Chown(sock, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		accepted := make(chan bool, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				c.Close()
			}
			accepted <- err == nil
		}()
		_, err = vm.Jcmd(context.Background(), "VM.version")
		if !errors.Is(err, ErrImpostor) {
			t.Fatalf("got %v, want ErrImpostor", err)
		}
		t.Logf("refused: %v", err)
		l.Close()
		if <-accepted {
			t.Error("lockscope connected to the impostor")
		}
		os.Remove(sock)
	})

	t.Run("socket deleted by tmp cleaner", func(t *testing.T) {
		os.Remove(sock)
		if out := jcmd(t, vm, "VM.version"); !strings.Contains(out, "JDK") {
			t.Errorf("VM.version after the socket was deleted: %q", out)
		}
		if !j.Alive() {
			t.Fatal("JVM died")
		}
	})
}

// TestAttachOtherUser attaches as root to a JVM of another user: the thread
// that connects must take the JVM's uid and gid.
func TestAttachOtherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot start a JVM as another user")
	}
	j := jvmtest.Start(t, jvmtest.Config{User: "lockscope-test"})
	vm := open(t, j.PID)
	if vm.UID == 0 {
		t.Fatalf("JVM runs as uid 0, want lockscope-test")
	}
	if out := jcmd(t, vm, "VM.version"); !strings.Contains(out, "JDK") {
		t.Errorf("VM.version = %q", out)
	}
	st, err := os.Stat(vm.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != vm.UID {
		t.Errorf("socket owned by %d, want %d", uid, vm.UID)
	}
	// The JVM's working directory is not writable by its user, so the
	// trigger had to go to /tmp; neither may keep it.
	if _, err := os.Stat("/tmp/.attach_pid" + strconv.Itoa(j.PID)); err == nil {
		t.Error("trigger file left in /tmp")
	}
	if euid := os.Geteuid(); euid != 0 {
		t.Errorf("lockscope's euid is %d after attaching, want 0", euid)
	}

	// lockscope run by the JVM's own user attaches without root; run by
	// another user, it is told what to do.
	exe := helperCopy(t)
	for _, tt := range []struct {
		pid  int
		want string
	}{
		{j.PID, "result: <nil>"},
		{os.Getpid(), "permission denied: run lockscope as root or as the JVM's user"},
	} {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(tt.pid))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: vm.UID, Gid: vm.GID}}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("attaching to pid %d as uid %d: %v: %s; want %q", tt.pid, vm.UID, err, out, tt.want)
		}
	}
}

// helperCopy copies the test binary where another user may run it.
func helperCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/var/tmp", "lockscope-attach-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "attach.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestAttachContainer attaches to a JVM in its own pid and mount namespaces
// with a private /tmp, as in a container.
func TestAttachContainer(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot create namespaces")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	j := jvmtest.Start(t, jvmtest.Config{Container: true})
	vm := open(t, j.PID)
	if vm.NSPID == vm.PID || vm.NSPID != 1 {
		t.Fatalf("NSPID = %d for host pid %d, want 1", vm.NSPID, vm.PID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := vm.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Feature == 0 {
		t.Errorf("no JDK version from %q", info.VM)
	}
	if _, err := os.Stat("/tmp/.java_pid1"); err == nil {
		t.Error("the container's socket is visible in the host's /tmp: the test's private /tmp did not work")
	}
	mapped := 0
	for _, th := range info.Threads {
		if th.HostTID != 0 && th.HostTID != th.NID {
			mapped++
		}
	}
	if mapped < len(info.Threads)/2 {
		t.Errorf("only %d of %d threads mapped to distinct host tids", mapped, len(info.Threads))
	}
}

// TestDisabled: a JVM with -XX:+DisableAttachMechanism gets a clear error
// before any signal; and if its flag were hidden from lockscope, the
// listener's timeout still names it, and the JVM survives the SIGQUIT.
func TestDisabled(t *testing.T) {
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{JVMArgs: []string{"-XX:+DisableAttachMechanism"}})
	_, err := Open(j.PID, DefaultOptions())
	if !errors.Is(err, ErrAttachDisabled) || !strings.Contains(err.Error(), "DisableAttachMechanism") {
		t.Fatalf("Open: got %v, want ErrAttachDisabled naming the flag", err)
	}
	t.Logf("error: %v", err)

	info, err := inspectNoFlags(j.PID)
	if err != nil {
		t.Fatal(err)
	}
	vm := &VM{PID: j.PID, NSPID: info.nspid, UID: info.uid, GID: info.gid, opts: Options{ListenerTimeout: time.Second, CommandTimeout: time.Minute}}
	_, err = vm.Jcmd(context.Background(), "VM.version")
	if !errors.Is(err, ErrNoListener) || !strings.Contains(err.Error(), "DisableAttachMechanism") {
		t.Fatalf("Jcmd: got %v, want ErrNoListener naming the flag", err)
	}
	time.Sleep(200 * time.Millisecond)
	if !j.Alive() {
		t.Fatal("JVM died of the SIGQUIT")
	}
}

func inspectNoFlags(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procInfo{}, err
	}
	return parseStatus(b, pid)
}

// TestNotJVM: a process that is not a JVM is refused and not signalled.
func TestNotJVM(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	_, err := Open(cmd.Process.Pid, DefaultOptions())
	if !errors.Is(err, ErrNotJVM) || !strings.Contains(err.Error(), "sleep") {
		t.Fatalf("got %v, want ErrNotJVM naming the process", err)
	}
	if cmd.ProcessState != nil {
		t.Fatal("sleep exited")
	}

	// A pid that cannot exist (above pid_max's hard limit).
	_, err = Open(1<<22+1, DefaultOptions())
	if !errors.Is(err, ErrNoProcess) {
		t.Fatalf("got %v, want ErrNoProcess", err)
	}
}

// TestReduceSignalUsage: a JVM started with -Xrs opens its attach socket at
// startup (HotSpot does so because it will not catch SIGQUIT). Once a /tmp
// cleaner deleted that socket, the signal that would restart the listener
// would kill the JVM: lockscope must refuse instead.
func TestReduceSignalUsage(t *testing.T) {
	t.Parallel()
	j := jvmtest.Start(t, jvmtest.Config{JVMArgs: []string{"-Xrs"}})
	vm := open(t, j.PID)
	if out := jcmd(t, vm, "VM.version"); !strings.Contains(out, "JDK") {
		t.Fatalf("VM.version = %q", out)
	}
	if err := os.Remove(vm.socketPath()); err != nil {
		t.Fatal(err)
	}
	_, err := vm.Jcmd(context.Background(), "VM.version")
	if !errors.Is(err, ErrAttachDisabled) || !strings.Contains(err.Error(), "-Xrs") {
		t.Fatalf("got %v, want ErrAttachDisabled naming -Xrs", err)
	}
	t.Logf("refused: %v", err)
	time.Sleep(200 * time.Millisecond)
	if !j.Alive() {
		t.Fatal("the JVM died")
	}
}
