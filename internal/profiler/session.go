package profiler

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/clock"
	"golang.org/x/sys/unix"
)

// Session is a profiler running in a JVM. It is owned by the goroutine that
// started it: Stop collects its recording, Close stops it without.
type Session struct {
	vm      *attach.VM
	opts    Options
	kind    Kind
	reason  string
	version string
	command string
	id      string
	remote  string // the recording, in the JVM's mount namespace
	lib     string // async-profiler: the agent, in the JVM's mount namespace
	log     string // async-profiler: its log, in the JVM's mount namespace
	start   clock.Pair
	done    bool
	// tmp is the JVM's /tmp held open (O_PATH): the recording stays
	// reachable through it after the JVM exits, when /proc/PID/root no
	// longer leads anywhere, so a recording the JVM wrote as it exited
	// (dumponexit) is collected instead of lost, and nothing is left
	// behind. Nil where it could not be opened: paths go through
	// /proc/PID/root then.
	tmp *os.File
}

// Result describes a finished capture's recording.
type Result struct {
	Profiler Kind
	Reason   string // why this profiler was used
	Version  string // async-profiler's version ("4.5"), or the JDK's ("JDK 17.0.15")
	Command  string // what was sent to the JVM to start it
	File     string // the recording, at the path given to Stop
	// Start and End pair the monotonic and realtime clocks when the
	// profiler started and stopped (internal/clock).
	Start clock.Pair
	End   clock.Pair
	// StoppedBySelf: the profiler had reached its own limit before Stop.
	StoppedBySelf bool
	// Perfmap is the host path of the JVM's JIT symbol map, if written.
	Perfmap  string
	Warnings []string
}

// Start starts the profiler o asks for in vm. With Auto it uses
// async-profiler when Locate finds it and says so in the Session's Reason,
// else the JDK Flight Recorder.
func Start(ctx context.Context, vm *attach.VM, o Options) (*Session, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	s := &Session{vm: vm, opts: o, id: id, remote: attach.TmpDir + "/lockscope-" + id + ".jfr"}
	kind, in, reason, err := Choose(o)
	if err != nil {
		return nil, err
	}
	if d, err := os.OpenFile(vm.HostPath(attach.TmpDir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		s.tmp = d
	}
	s.kind, s.reason = kind, reason
	if kind == AsyncProfiler {
		s.version = in.Version
		err = s.startAsprof(ctx, in)
	} else {
		err = s.startJFR(ctx)
	}
	if err != nil {
		s.closeTmp()
		return nil, err
	}
	return s, nil
}

// host is the host path of a file in the JVM's mount namespace, through
// the held /tmp for files there.
func (s *Session) host(path string) string {
	if s.tmp != nil && filepath.Dir(path) == attach.TmpDir {
		return "/proc/self/fd/" + strconv.Itoa(int(s.tmp.Fd())) + "/" + filepath.Base(path)
	}
	return s.vm.HostPath(path)
}

func (s *Session) closeTmp() {
	if s.tmp != nil {
		s.tmp.Close()
		s.tmp = nil
	}
}

// Choose says which profiler Start would run for o, where async-profiler
// is (for AsyncProfiler) and why, for the user. With Auto it takes
// async-profiler when Locate finds it, else the JDK Flight Recorder; an
// async-profiler home named explicitly but wrong is an error, not a reason
// to fall back.
func Choose(o Options) (Kind, *Install, string, error) {
	switch o.Profiler {
	case JFR:
		return JFR, nil, "JDK Flight Recorder: asked for with --profiler jfr", nil
	case AsyncProfiler, Auto:
		in, err := Locate(o.AsyncProfilerHome)
		switch {
		case err == nil:
			return AsyncProfiler, in, fmt.Sprintf("async-profiler %s from %s (found by %s)", cmp.Or(in.Version, "(version unknown)"), in.Home, in.From), nil
		case o.Profiler == Auto && errors.Is(err, ErrNoAsyncProfiler) && o.AsyncProfilerHome == "" && os.Getenv(EnvHome) == "":
			return JFR, nil, "JDK Flight Recorder: async-profiler is not installed (not in $" + EnvHome + ", on PATH or in " + searchDirs[0] + "...; --async-profiler DIR names it)", nil
		default:
			return "", nil, "", err
		}
	}
	return "", nil, "", fmt.Errorf("profiler %q: want auto, async-profiler or jfr", o.Profiler)
}

func newID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a recording id: %w", err)
	}
	return strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b), nil
}

// Profiler is the profiler running.
func (s *Session) Profiler() Kind { return s.kind }

// Reason says why this profiler runs, for the user.
func (s *Session) Reason() string { return s.reason }

// Command is what was sent to the JVM to start the profiler.
func (s *Session) Command() string { return s.command }

// RemoteFile is where the JVM writes the recording, in its mount namespace;
// it stays there if lockscope dies before Stop.
func (s *Session) RemoteFile() string { return s.remote }

// Name is the recording's name in the JVM (JFR.check lists it); empty for
// async-profiler, which runs one session per JVM.
func (s *Session) Name() string {
	if s.kind == JFR {
		return "lockscope-" + s.id
	}
	return ""
}

// Stop stops the profiler, moves its recording to dst (a host path) and,
// if the options ask for it, has the JVM write its JIT symbol map.
func (s *Session) Stop(ctx context.Context, dst string) (*Result, error) {
	if s.done {
		return nil, errors.New("stopping profiler: already stopped")
	}
	s.done = true
	r := &Result{Profiler: s.kind, Reason: s.reason, Version: s.version, Command: s.command, Start: s.start}
	var err error
	if s.kind == AsyncProfiler {
		r.StoppedBySelf, err = s.stopAsprof(ctx)
	} else {
		r.StoppedBySelf, err = s.stopJFR(ctx)
	}
	r.End = clock.Sample()
	defer s.closeTmp()
	if err != nil {
		// A JVM that exited wrote its recording as it went (JFR's
		// dumponexit, async-profiler's shutdown): collect that.
		if s.exited() {
			if st, serr := os.Stat(s.host(s.remote)); serr == nil && st.Size() > 0 {
				if merr := moveOut(s.host(s.remote), dst); merr == nil {
					r.File = dst
					r.Warnings = append(r.Warnings, "the JVM exited during the capture: its recording is what it wrote as it exited")
					return r, nil
				}
			}
		}
		os.Remove(s.host(s.remote))
		return nil, err
	}
	if err := moveOut(s.host(s.remote), dst); err != nil {
		return nil, err
	}
	r.File = dst
	if s.opts.Perfmap {
		r.Perfmap, err = s.perfmap(ctx)
		if err != nil {
			r.Warnings = append(r.Warnings, err.Error())
		}
	}
	return r, nil
}

// Close stops a profiler Stop has not stopped and deletes its recording; it
// is for error paths, and does nothing after Stop.
func (s *Session) Close() error {
	if s.done {
		return nil
	}
	s.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if s.kind == AsyncProfiler {
		_, err = s.stopAsprof(ctx)
	} else {
		_, err = s.stopJFR(ctx)
	}
	os.Remove(s.host(s.remote))
	s.closeTmp()
	return err
}

// exited reports whether the JVM is gone.
func (s *Session) exited() bool {
	return unix.Kill(s.vm.PID, 0) == unix.ESRCH
}

// perfmap asks the JVM to write /tmp/perf-<nspid>.map and returns its host
// path.
func (s *Session) perfmap(ctx context.Context) (string, error) {
	if _, err := s.vm.Jcmd(ctx, "Compiler.perfmap"); err != nil {
		return "", fmt.Errorf("no JIT symbols for eBPF user stacks: Compiler.perfmap (JDK 17+): %w", err)
	}
	p := s.vm.HostPath(attach.TmpDir + "/perf-" + strconv.Itoa(s.vm.NSPID) + ".map")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no JIT symbols for eBPF user stacks: Compiler.perfmap ran but %w", err)
	}
	return p, nil
}

// moveOut copies the recording from the JVM's file system to dst, then
// removes it there. It copies rather than renames: the two are usually on
// different file systems.
func moveOut(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("collecting the recording: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("collecting the recording: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("collecting the recording: %w", err)
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Keep the JVM's copy: it is the only complete one.
		return fmt.Errorf("collecting the recording into %s (the original stays at %s): %w", dst, src, err)
	}
	if n == 0 {
		return fmt.Errorf("collecting the recording: %s is empty", src)
	}
	os.Remove(src)
	return nil
}

// Leftover is a recording a capture left in the JVM's /tmp: its lockscope
// died before collecting it, or it is still running.
type Leftover struct {
	Path string // in the JVM's mount namespace
	Host string // the same file seen from the host
	Size int64
	Mod  time.Time
}

// Leftovers lists lockscope recordings in the JVM's /tmp, so that an
// operator can collect or delete what a killed capture left.
func Leftovers(vm *attach.VM) ([]Leftover, error) {
	pattern := vm.HostPath(attach.TmpDir + "/lockscope-*.jfr")
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", pattern, err)
	}
	var out []Leftover
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		out = append(out, Leftover{Path: attach.TmpDir + "/" + filepath.Base(m), Host: m, Size: st.Size(), Mod: st.ModTime()})
	}
	return out, nil
}
