package capture

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lockscope/lockscope/internal/attach/jvmtest"
	"github.com/lockscope/lockscope/internal/bundle"
)

// TestCaptureWithoutBPFPermission: lockscope run by an unprivileged user
// against that user's JVM cannot load BPF; the capture goes on without
// off-CPU intervals and says so, unless --require-offcpu.
func TestCaptureWithoutBPFPermission(t *testing.T) {
	needRoot(t) // to create the user and act as it
	uid, gid := jvmtest.EnsureUser(t, "lockscope-test")
	jvm := jvmtest.Start(t, jvmtest.Config{User: "lockscope-test"})
	work, err := os.MkdirTemp("", "lockscope-noperm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	if err := os.Chown(work, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	// The test binary sits in a directory only root may enter: the user
	// runs a copy.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "capture.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(dir string, require bool) (string, error) {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d none %s 3 %v", helperEnv, jvm.PID, dir, require))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	dir := filepath.Join(work, "bundle")
	out, err := run(dir, false)
	if err != nil {
		t.Fatalf("capture as an unprivileged user: %v\n%s", err, out)
	}
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range b.Meta.Warnings {
		warned = warned || strings.Contains(w, "off-CPU intervals not collected")
	}
	if !warned || !strings.Contains(out, "off-CPU intervals not collected") {
		t.Errorf("no warning about the missing off-CPU intervals: %v\n%s", b.Meta.Warnings, out)
	}
	if b.Has(bundle.OffCPUFile) || !b.Has(bundle.RecordingFile) || !b.Has(bundle.SlowProfile) {
		t.Errorf("bundle files %+v: want the recording and profiles, no off-CPU stream", b.Meta.Files)
	}

	out, err = run(filepath.Join(work, "required"), true)
	if err == nil || !strings.Contains(out, "--require-offcpu") {
		t.Errorf("with --require-offcpu: %v\n%s", err, out)
	}
}
