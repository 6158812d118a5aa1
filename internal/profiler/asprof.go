package profiler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/clock"
)

// startAsprof loads async-profiler into the JVM and starts it.
func (s *Session) startAsprof(ctx context.Context, in *Install) error {
	lib, err := agentPath(s.vm, in.Lib)
	if err != nil {
		return err
	}
	s.lib = lib
	// The agent closes logs under this prefix after an error and after stop
	// (its asprof launcher's convention), so the file can be read and removed.
	s.log = attach.TmpDir + "/asprof-log.lockscope-" + s.id
	s.command = asprofStart(s.opts, s.remote, s.log)
	s.start = clock.Sample()
	_, err = s.vm.Load(ctx, s.lib, true, s.command)
	msg := s.readLog()
	if err != nil {
		hint := ""
		switch {
		case strings.Contains(msg+err.Error(), "already started"):
			hint = ": another async-profiler session runs in this JVM; stop it (asprof stop PID) or wait for it"
		case strings.Contains(err.Error(), "Permission denied"), strings.Contains(err.Error(), "failed to map segment"):
			hint = fmt.Sprintf(": the JVM's user (uid %d) cannot load %s; make it readable, or its directory traversable, and the file system not noexec", s.vm.UID, s.lib)
		}
		if msg != "" {
			return fmt.Errorf("starting async-profiler: %s%s: %w", msg, hint, err)
		}
		return fmt.Errorf("starting async-profiler%s: %w", hint, err)
	}
	return nil
}

// stopAsprof stops async-profiler, which finishes the recording. If its
// timeout stopped it already, its status says so and the finished file is
// there (a stop with JFR output would succeed silently either way).
func (s *Session) stopAsprof(ctx context.Context) (bySelf bool, err error) {
	if st, err := AsprofStatus(ctx, s.vm, s.lib); err == nil && strings.Contains(st, "not active") {
		if _, serr := os.Stat(s.host(s.remote)); serr == nil {
			return true, nil
		}
	}
	_, err = s.vm.Load(ctx, s.lib, true, asprofStop(s.remote, s.log))
	msg := s.readLog()
	if err != nil {
		if strings.Contains(msg, "not active") || strings.Contains(msg, "not started") {
			if _, serr := os.Stat(s.host(s.remote)); serr == nil {
				return true, nil
			}
		}
		if msg != "" {
			return false, fmt.Errorf("stopping async-profiler: %s: %w", msg, err)
		}
		return false, fmt.Errorf("stopping async-profiler: %w", err)
	}
	return false, nil
}

// Status asks async-profiler in the JVM whether it runs; JFR sessions
// answer with JFR.check. It tells a capture's state without changing it.
func (s *Session) Status(ctx context.Context) (string, error) {
	if s.kind == JFR {
		return s.vm.Jcmd(ctx, "JFR.check name="+s.Name())
	}
	return AsprofStatus(ctx, s.vm, s.lib)
}

// AsprofStatus asks the async-profiler agent at lib (a path in the JVM's
// mount namespace) whether it is profiling, e.g. "Profiler is not active".
func AsprofStatus(ctx context.Context, vm *attach.VM, lib string) (string, error) {
	id, err := newID()
	if err != nil {
		return "", err
	}
	file := attach.TmpDir + "/lockscope-status-" + id
	log := attach.TmpDir + "/asprof-log.lockscope-" + id
	defer os.Remove(vm.HostPath(file))
	defer os.Remove(vm.HostPath(log))
	if _, err := vm.Load(ctx, lib, true, asprofStatus(file, log)); err != nil {
		return "", fmt.Errorf("asking async-profiler for its status: %w", err)
	}
	b, err := os.ReadFile(vm.HostPath(file))
	if err != nil {
		return "", fmt.Errorf("reading async-profiler's status: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// AgentPath is the path of the async-profiler library in the JVM's mount
// namespace that Start loads; see agentPath.
func AgentPath(vm *attach.VM, lib string) (string, error) { return agentPath(vm, lib) }

// readLog returns and removes what the agent logged for one command.
func (s *Session) readLog() string {
	p := s.host(s.log)
	b, _ := os.ReadFile(p)
	os.Remove(p)
	var lines []string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// agentPath returns a path at which the JVM finds the library lib of the
// host: lib itself if the JVM's mount namespace shows the same file there,
// else a copy in the JVM's /tmp named by the library's hash, so that
// repeated captures reuse one copy and another version never replaces a
// library a JVM has mapped. A copy is not removed: the JVM keeps the library
// loaded, and the next capture loads it again by the same path.
func agentPath(vm *attach.VM, lib string) (string, error) {
	host, err := os.Stat(lib)
	if err != nil {
		return "", fmt.Errorf("async-profiler library: %w", err)
	}
	if in, err := os.Stat(vm.HostPath(lib)); err == nil && os.SameFile(host, in) {
		return lib, nil
	}
	data, err := os.ReadFile(lib)
	if err != nil {
		return "", fmt.Errorf("reading async-profiler library: %w", err)
	}
	sum := sha256.Sum256(data)
	dir := attach.TmpDir + "/lockscope-asprof-" + hex.EncodeToString(sum[:8])
	path := dir + "/" + filepath.Base(lib)
	hostPath := vm.HostPath(path)
	if same, err := sameContent(hostPath, sum); err == nil && same {
		return path, nil
	}
	if err := os.MkdirAll(vm.HostPath(dir), 0o755); err != nil {
		return "", fmt.Errorf("copying async-profiler into the JVM's %s: %w", attach.TmpDir, err)
	}
	// MkdirAll keeps an existing directory as it is: make sure nobody but
	// lockscope can write into it.
	if st, err := os.Lstat(vm.HostPath(dir)); err != nil || !st.IsDir() || st.Mode().Perm()&0o022 != 0 || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		return "", fmt.Errorf("copying async-profiler into the JVM's %s: %s is not a directory only lockscope's user can write; remove it", attach.TmpDir, dir)
	}
	tmp := hostPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return "", fmt.Errorf("copying async-profiler into the JVM's %s: %w", attach.TmpDir, err)
	}
	if err := os.Rename(tmp, hostPath); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("copying async-profiler into the JVM's %s: %w", attach.TmpDir, err)
	}
	return path, nil
}

func sameContent(path string, sum [32]byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return bytes.Equal(h.Sum(nil), sum[:]), nil
}
