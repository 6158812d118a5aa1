package profiler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/clock"
)

// startJFR starts a Flight Recorder recording with lockscope's settings,
// written for this capture into the JVM's /tmp and removed once read.
func (s *Session) startJFR(ctx context.Context) error {
	jfc, err := settings(s.opts)
	if err != nil {
		return err
	}
	settingsPath := attach.TmpDir + "/lockscope-" + s.id + ".jfc"
	host := s.host(settingsPath)
	// Readable by the JVM's user, whoever that is.
	if err := os.WriteFile(host, jfc, 0o644); err != nil {
		return fmt.Errorf("writing JFR settings into the JVM's %s: %w", attach.TmpDir, err)
	}
	defer os.Remove(host)
	if v, err := s.vm.Version(ctx); err == nil && v.JDK != "" {
		s.version = "JDK " + v.JDK
	}
	s.command = jfrStart(s.opts, s.Name(), settingsPath, s.remote)
	s.start = clock.Sample()
	out, err := s.vm.Jcmd(ctx, s.command)
	if err != nil {
		var ce *attach.CommandError
		if !errors.As(err, &ce) {
			// Not the JVM refusing: the command may have reached it and
			// started the recording before the wait for its answer ended
			// (a capture cancelled right then). Nothing may keep running
			// without an owner: stop it, with a context of its own.
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.stopJFR(cctx)
			cancel()
			os.Remove(s.host(s.remote))
		}
		if strings.Contains(err.Error(), "Unknown diagnostic command") {
			return fmt.Errorf("starting the JDK Flight Recorder: this JVM has none (JDK 8 before 8u262?): install async-profiler: %w", err)
		}
		return fmt.Errorf("starting the JDK Flight Recorder: %w", err)
	}
	if !strings.Contains(out, "Started recording") {
		// Whatever it did, nothing may keep running without an owner.
		s.stopJFR(ctx)
		os.Remove(s.host(s.remote))
		return fmt.Errorf("starting the JDK Flight Recorder: the JVM answered %q", strings.TrimSpace(out))
	}
	return nil
}

// stopJFR stops the recording, which writes its file. A recording that
// reached its duration has stopped, written its file and is gone: then
// JFR.stop finds no such recording, and the file tells.
func (s *Session) stopJFR(ctx context.Context) (bySelf bool, err error) {
	out, err := s.vm.Jcmd(ctx, jfrStop(s.Name(), s.remote))
	var ce *attach.CommandError
	if errors.As(err, &ce) {
		out = ce.Output
	}
	// JDK 17 answers "Could not stop recording", older ones "No recording
	// with name", for a recording that is gone.
	if err != nil || !strings.Contains(out, "Stopped recording") {
		if strings.Contains(out, "Could not") || strings.Contains(out, "No recording") {
			if _, serr := os.Stat(s.host(s.remote)); serr == nil {
				return true, nil
			}
		}
		if err == nil {
			err = fmt.Errorf("the JVM answered %q", strings.TrimSpace(out))
		}
		return false, fmt.Errorf("stopping the JDK Flight Recorder: %w", err)
	}
	return false, nil
}
