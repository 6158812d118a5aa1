// Package jvmtest starts real JVMs for the tests of lockscope's attach and
// profiler packages: a small Java program (testdata/Busy.java) whose threads
// contend on a monitor and a ReentrantLock, write and force a file, sleep
// and burn CPU, run as the test's user, as another user, or in a container
// of its own (new pid and mount namespaces with a private /tmp).
//
// Every JVM ends with the test that started it: its standard input is closed
// (the program exits) and the process is killed if it lingers. The compiled
// program is kept in /var/tmp between runs, one directory per source version.
package jvmtest

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed testdata/Busy.java
var busySource []byte

var (
	compileOnce sync.Once
	classesDir  string
	compileErr  error
)

// Classes returns a world-readable directory holding the compiled test
// program (javac once is cheaper than `java Busy.java` per JVM on a small
// machine). The directory is named after the source's hash and kept between
// runs, so test binaries share it and nothing accumulates; it is not under
// /tmp, which container JVMs replace with a private one.
func Classes(tb testing.TB) string {
	tb.Helper()
	compileOnce.Do(func() {
		sum := sha256.Sum256(busySource)
		const dir = "/var/tmp"
		final := filepath.Join(dir, "lockscope-jvmtest-"+hex.EncodeToString(sum[:8]))
		if _, err := os.Stat(filepath.Join(final, "Busy.class")); err == nil {
			classesDir = final
			return
		}
		tmp, err := os.MkdirTemp(dir, "lockscope-jvmtest-tmp-")
		if err != nil {
			compileErr = err
			return
		}
		defer os.RemoveAll(tmp)
		if err := os.Chmod(tmp, 0o755); err != nil {
			compileErr = err
			return
		}
		src := filepath.Join(tmp, "Busy.java")
		if err := os.WriteFile(src, busySource, 0o644); err != nil {
			compileErr = err
			return
		}
		if out, err := exec.Command("javac", "-d", tmp, src).CombinedOutput(); err != nil {
			compileErr = fmt.Errorf("javac: %v: %s", err, out)
			return
		}
		// Another test binary may have won the race; its copy is as good.
		if err := os.Rename(tmp, final); err != nil {
			if _, serr := os.Stat(filepath.Join(final, "Busy.class")); serr != nil {
				compileErr = err
				return
			}
		}
		classesDir = final
	})
	if compileErr != nil {
		tb.Fatalf("compiling the test JVM program: %v (is openjdk-17-jdk-headless installed? run scripts/setup.sh)", compileErr)
	}
	return classesDir
}

// Config says how to start a test JVM.
type Config struct {
	User      string   // run as this user (the test must be root); "" runs as the test's user
	JVMArgs   []string // extra JVM options
	Env       []string // extra environment, KEY=value
	Container bool     // new pid and mount namespaces with a private /tmp (needs root and unshare)
}

// JVM is a running test JVM.
type JVM struct {
	PID   int // host pid of the java process
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   strings.Builder
	done  chan struct{}
}

// Output returns what the JVM printed so far (stdout and stderr).
func (j *JVM) Output() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.out.String()
}

// Alive reports whether the java process still runs.
func (j *JVM) Alive() bool {
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}

// Start starts a JVM running the test program and returns once it printed
// "ready". The JVM stops when the test ends.
func Start(tb testing.TB, cfg Config) *JVM {
	tb.Helper()
	dir := Classes(tb)
	java := []string{"java",
		// Fast start, few threads: tests share two CPUs with everything else.
		"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx64m", "-Xss512k"}
	java = append(java, cfg.JVMArgs...)
	java = append(java, "-cp", dir, "Busy")

	var cmd *exec.Cmd
	if cfg.Container {
		if os.Geteuid() != 0 {
			tb.Skip("container JVM: not root")
		}
		script := "mount -t tmpfs lockscope-test-tmp /tmp && exec " + strings.Join(java, " ")
		cmd = exec.Command("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private", "sh", "-c", script)
	} else {
		cmd = exec.Command(java[0], java[1:]...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cfg.Env...)
	if cfg.User != "" {
		uid, gid := EnsureUser(tb, cfg.User)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		cmd.Env = append(cmd.Env, "HOME=/", "USER="+cfg.User)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting java: %v", err)
	}
	j := &JVM{PID: cmd.Process.Pid, Cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			j.mu.Lock()
			j.out.WriteString(sc.Text() + "\n")
			j.mu.Unlock()
			if sc.Text() == "ready" {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(j.done)
	}()
	tb.Cleanup(func() {
		stdin.Close()
		select {
		case <-j.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-j.done
		}
	})
	select {
	case <-ready:
	case <-j.done:
		tb.Fatalf("java exited before it was ready: %s", j.Output())
	case <-time.After(60 * time.Second):
		tb.Fatalf("java not ready after 60 s: %s", j.Output())
	}
	if cfg.Container {
		// unshare forked the namespace's first process, which became java.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", j.PID, j.PID))
		if err != nil {
			tb.Fatalf("finding the container's java: %v", err)
		}
		f := strings.Fields(string(b))
		if len(f) != 1 {
			tb.Fatalf("unshare has children %q, want one", b)
		}
		j.PID, _ = strconv.Atoi(f[0])
	}
	return j
}

// EnsureUser returns the ids of the system user name, creating it (no home,
// no login shell) when missing. Creating needs root; the test is skipped
// when it is not.
func EnsureUser(tb testing.TB, name string) (uid, gid uint32) {
	tb.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		if os.Geteuid() != 0 {
			tb.Skipf("JVM as user %s: the user is missing and the test is not root", name)
		}
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		// Another test binary may have created it in between.
		if err != nil && !strings.Contains(string(out), "already exists") {
			tb.Fatalf("useradd %s: %v: %s", name, err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			tb.Fatalf("looking up %s after useradd: %v", name, err)
		}
	}
	if os.Geteuid() != 0 {
		tb.Skipf("JVM as user %s: not root", name)
	}
	id, _ := strconv.ParseUint(u.Uid, 10, 32)
	g, _ := strconv.ParseUint(u.Gid, 10, 32)
	return uint32(id), uint32(g)
}
