package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune how lockscope attaches.
type Options struct {
	// ListenerTimeout bounds the wait for a JVM to open its attach socket
	// after the SIGQUIT. A busy JVM answers within milliseconds; one stuck in
	// a long GC pause or on an overloaded host may need seconds.
	ListenerTimeout time.Duration
	// CommandTimeout bounds a command whose context has no deadline: a JVM
	// that cannot reach a safepoint never answers.
	CommandTimeout time.Duration
}

// DefaultOptions are the options the lockscope commands start from.
func DefaultOptions() Options {
	return Options{ListenerTimeout: 10 * time.Second, CommandTimeout: time.Minute}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.ListenerTimeout <= 0 {
		return fmt.Errorf("attach listener timeout %v: must be positive", o.ListenerTimeout)
	}
	if o.CommandTimeout <= 0 {
		return fmt.Errorf("attach command timeout %v: must be positive", o.CommandTimeout)
	}
	return nil
}

// VM is a HotSpot JVM lockscope may send commands to. It holds no descriptor:
// each Exec opens and closes its own connection.
type VM struct {
	// PID is the JVM's process id on the host, NSPID its id in its own pid
	// namespace (equal outside containers). HotSpot names its attach files
	// after NSPID.
	PID, NSPID int
	// UID and GID are the JVM's effective ids, the only peer it trusts.
	UID, GID uint32

	opts    Options
	started sync.Mutex // one listener start at a time
}

// Open inspects pid and returns a VM for it, or an error saying why lockscope
// cannot attach (ErrNoProcess, ErrNotJVM, ErrAttachDisabled, ErrPermission).
// It sends nothing to the process.
func Open(pid int, opts Options) (*VM, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pid %d: must be positive", pid)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	info, err := inspect(pid)
	if err != nil {
		return nil, err
	}
	return &VM{PID: pid, NSPID: info.nspid, UID: info.uid, GID: info.gid, opts: opts}, nil
}

// HostPath returns the host path of path as the JVM sees it in its mount
// namespace (a container's file system). Files lockscope hands to the JVM
// (settings, agent, recording) are put and fetched through it.
func (vm *VM) HostPath(path string) string {
	return "/proc/" + strconv.Itoa(vm.PID) + "/root" + path
}

// TmpDir is the JVM's temporary directory, in its own mount namespace.
// HotSpot puts its attach socket and perf map files there, whatever
// java.io.tmpdir says.
const TmpDir = "/tmp"

func (vm *VM) socketPath() string {
	return vm.HostPath(TmpDir + "/.java_pid" + strconv.Itoa(vm.NSPID))
}

// Exec sends one attach operation with up to three arguments and returns the
// JVM's output. A non-zero result code is returned as a *CommandError; an
// agent that a load command could not start is one too.
func (vm *VM) Exec(ctx context.Context, op string, args ...string) (string, error) {
	req, err := encodeRequest(op, args)
	if err != nil {
		return "", err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, vm.opts.CommandTimeout)
		defer cancel()
	}
	conn, err := vm.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(req); err != nil {
		return "", fmt.Errorf("sending %s to pid %d: %w", op, vm.PID, ctxErr(ctx, err))
	}
	// Thread dumps of large brokers run to megabytes; anything beyond this
	// is not an answer lockscope can use.
	const maxResponse = 64 << 20
	resp, err := io.ReadAll(io.LimitReader(conn, maxResponse))
	if err != nil {
		return "", fmt.Errorf("reading the answer to %s from pid %d: %w", op, vm.PID, ctxErr(ctx, err))
	}
	return parseResponse(op, args, resp)
}

// Jcmd runs a diagnostic command such as "VM.version" or
// "JFR.check name=x verbose=true", as the jcmd tool would.
func (vm *VM) Jcmd(ctx context.Context, command string) (string, error) {
	return vm.Exec(ctx, "jcmd", command)
}

// Load loads a JVMTI agent library into the JVM and calls its
// Agent_OnAttach with options. absolute says whether lib is a path (in the
// JVM's mount namespace) rather than a library name.
func (vm *VM) Load(ctx context.Context, lib string, absolute bool, options string) (string, error) {
	return vm.Exec(ctx, "load", lib, strconv.FormatBool(absolute), options)
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// HotSpot reads at most this many bytes per argument (AttachOperation's
// arg_length_max) and drops the connection on longer ones.
const maxArgLen = 1024

// encodeRequest builds a protocol 1 request: the version, the operation and
// exactly three arguments, each NUL-terminated.
func encodeRequest(op string, args []string) ([]byte, error) {
	if op == "" || len(op) > 16 {
		return nil, fmt.Errorf("attach operation %q: must have 1 to 16 bytes", op)
	}
	if len(args) > 3 {
		return nil, fmt.Errorf("attach operation %s: %d arguments, at most 3", op, len(args))
	}
	var b bytes.Buffer
	b.WriteString("1\x00")
	b.WriteString(op)
	b.WriteByte(0)
	for i := range 3 {
		var a string
		if i < len(args) {
			a = args[i]
		}
		if len(a) > maxArgLen {
			return nil, fmt.Errorf("attach operation %s: argument %d has %d bytes, HotSpot takes at most %d", op, i+1, len(a), maxArgLen)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("attach operation %s: argument %d contains a NUL byte", op, i+1)
		}
		b.WriteString(a)
		b.WriteByte(0)
	}
	return b.Bytes(), nil
}

// parseResponse splits an answer into its result code and output. The load
// operation nests the agent's own result; how depends on the JDK:
//
//	JDK 8:    "0\n<agent code>\n"
//	JDK 9+:   "0\nreturn code: <agent code>\n"
//	JDK 21+:  "0\n" then, only on failure, an error message
func parseResponse(op string, args []string, resp []byte) (string, error) {
	line, rest, _ := bytes.Cut(resp, []byte{'\n'})
	code, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		if len(resp) == 0 {
			return "", fmt.Errorf("%s: the JVM closed the connection without an answer", op)
		}
		return "", fmt.Errorf("%s: answer starts with %q, not a result code", op, line)
	}
	out := string(rest)
	command := strings.TrimSpace(op + " " + strings.Join(args, " "))
	if code != 0 {
		return out, &CommandError{Command: command, Code: code, Output: strings.TrimSpace(out)}
	}
	if op != "load" {
		return out, nil
	}
	first, more, _ := strings.Cut(out, "\n")
	first = strings.TrimSpace(first)
	switch {
	case first == "":
		return out, nil
	case strings.HasPrefix(first, "return code: "):
		first = strings.TrimPrefix(first, "return code: ")
		fallthrough
	case first[0] == '-' || first[0] >= '0' && first[0] <= '9':
		agent, err := strconv.Atoi(first)
		if err != nil {
			return out, fmt.Errorf("load: agent result %q is not a number", first)
		}
		if agent != 0 {
			return out, &CommandError{Command: command, Code: agent, Output: strings.TrimSpace(more)}
		}
		return strings.TrimLeft(more, "\n"), nil
	default:
		return out, &CommandError{Command: command, Code: -1, Output: strings.TrimSpace(out)}
	}
}

// connect returns a connection to the JVM's attach listener, starting the
// listener first if its socket is missing or stale.
func (vm *VM) connect(ctx context.Context) (net.Conn, error) {
	conn, err := vm.dial()
	if err == nil {
		return conn, nil
	}
	if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ECONNREFUSED) {
		return nil, err
	}
	// Missing: the listener never ran, or a /tmp cleaner deleted its socket.
	// Refused: a socket left by a JVM that died, under a reused pid.
	if err := vm.startListener(ctx); err != nil {
		return nil, err
	}
	conn, err = vm.dial()
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// dial opens the socket file with O_PATH, checks its owner on that very
// inode and connects through /proc/self/fd, so that a file swapped in between
// cannot be connected to.
func (vm *VM) dial() (net.Conn, error) {
	path := vm.socketPath()
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("attach socket %s: %w: it is a symbolic link", path, ErrImpostor)
		}
		return nil, fmt.Errorf("opening attach socket %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("checking attach socket %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("attach socket %s: %w: it is not a socket", path, ErrImpostor)
	}
	if st.Uid != vm.UID {
		return nil, fmt.Errorf("attach socket %s: %w: owned by uid %d, the JVM runs as uid %d; another user may be impersonating the JVM, remove the file and retry", path, ErrImpostor, st.Uid, vm.UID)
	}
	var sock int
	err = asUser(vm.UID, vm.GID, func() error {
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("creating unix socket: %w", err)
		}
		// The peer credentials HotSpot checks are taken here, at connect.
		if err := unix.Connect(s, &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(fd)}); err != nil {
			unix.Close(s)
			return fmt.Errorf("connecting to attach socket %s: %w", path, err)
		}
		sock = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(sock), path)
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("using attach socket %s: %w", path, err)
	}
	return conn, nil
}

// startListener makes the JVM open its attach socket, as the JDK's own
// client does: a trigger file the JVM trusts, then SIGQUIT, then a bounded
// wait that starts at 20 ms and grows by 20 ms per try.
func (vm *VM) startListener(ctx context.Context) error {
	vm.started.Lock()
	defer vm.started.Unlock()
	if conn, err := vm.dial(); err == nil {
		conn.Close() // another goroutine started it meanwhile
		return nil
	}
	// Re-read: the JVM may have exited, and a JVM still starting up has not
	// yet installed its SIGQUIT handler.
	status, err := os.ReadFile("/proc/" + strconv.Itoa(vm.PID) + "/status")
	if err != nil {
		return fmt.Errorf("pid %d: %w", vm.PID, ErrNoProcess)
	}
	info, err := parseStatus(status, vm.PID)
	if err != nil {
		return fmt.Errorf("reading status of pid %d: %w", vm.PID, err)
	}
	if !info.sigQuitCgt {
		dir := "/proc/" + strconv.Itoa(vm.PID)
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		environ, _ := os.ReadFile(dir + "/environ")
		if slices.Contains(jvmOptions(cmdline, environ), "-Xrs") {
			return fmt.Errorf("pid %d: %w: the JVM runs with -Xrs, so it opened its attach socket at startup and SIGQUIT, which would reopen it, would kill it; the socket %s is gone (a /tmp cleaner?): restart the JVM and exclude /tmp/.java_pid* from the cleaner", vm.PID, ErrAttachDisabled, TmpDir+"/.java_pid"+strconv.Itoa(vm.NSPID))
		}
		return fmt.Errorf("pid %d: %w: the JVM does not handle SIGQUIT yet (still starting?), and the signal that starts its attach listener would kill it; retry once it is up", vm.PID, ErrAttachDisabled)
	}
	trigger, err := vm.createTrigger()
	if err != nil {
		return err
	}
	defer os.Remove(trigger)
	before, _ := os.Lstat(vm.socketPath())

	if err := unix.Kill(vm.PID, unix.SIGQUIT); err != nil {
		return fmt.Errorf("signalling pid %d: %w", vm.PID, err)
	}
	deadline := time.Now().Add(vm.opts.ListenerTimeout)
	for delay := 20 * time.Millisecond; ; delay += 20 * time.Millisecond {
		t := time.NewTimer(min(delay, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the attach listener of pid %d: %w", vm.PID, ctx.Err())
		case <-t.C:
		}
		if st, err := os.Lstat(vm.socketPath()); err == nil && st.Mode()&os.ModeSocket != 0 && (before == nil || !os.SameFile(before, st)) {
			return nil
		}
		if err := unix.Kill(vm.PID, 0); errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pid %d exited while starting its attach listener: %w", vm.PID, ErrNoProcess)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("pid %d: %w after %v: the JVM may run with -XX:+DisableAttachMechanism from a flags file, be stuck in a long pause, or (JDK 8 to 10) have lost its socket %s to a /tmp cleaner such as systemd-tmpfiles, which only a restart repairs; exclude /tmp/.java_pid* from the cleaner",
				vm.PID, ErrNoListener, vm.opts.ListenerTimeout, TmpDir+"/.java_pid"+strconv.Itoa(vm.NSPID))
		}
	}
}

// createTrigger creates the .attach_pid file HotSpot looks for on SIGQUIT,
// first in the JVM's working directory, then in its /tmp. HotSpot trusts the
// file only if its own user (or root) owns it; a file system that maps owners
// (NFS root squash) can defeat that, so the owner is checked and the next
// place tried.
func (vm *VM) createTrigger() (string, error) {
	name := "/.attach_pid" + strconv.Itoa(vm.NSPID)
	places := []string{
		"/proc/" + strconv.Itoa(vm.PID) + "/cwd" + name,
		vm.HostPath(TmpDir + name),
	}
	var errs []error
	for _, p := range places {
		err := asUser(vm.UID, vm.GID, func() error {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o660)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if uid := st.Sys().(*syscall.Stat_t).Uid; uid != vm.UID && uid != 0 {
				os.Remove(p)
				return fmt.Errorf("created %s owned by uid %d", p, uid)
			}
			return nil
		})
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("creating the attach trigger file for pid %d: %w", vm.PID, errors.Join(errs...))
}
