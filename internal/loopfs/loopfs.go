// Package loopfs mounts throwaway filesystems on loop devices for tests
// that need a real journal (ext4's jbd2, XFS's log): the VM's root
// filesystem has none. Everything Mount sets up is undone when the test
// ends, also when it fails.
package loopfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Options say what to make. The zero value is a 64 MiB ext4.
type Options struct {
	// Type is "ext4" (default) or "xfs".
	Type string
	// SizeMiB is the image size (default 64; XFS needs at least 300).
	SizeMiB int
	// Mkfs and Mount are extra arguments: mkfs options ("-O fast_commit"),
	// mount options ("data=writeback").
	Mkfs  []string
	Mount string
	// DirectIO makes the loop device bypass the page cache of its backing
	// file, so a journal commit waits for the real disk.
	DirectIO bool
}

// Mount makes a filesystem as o says and returns its mount point. Tests
// that call it need root; a missing tool fails the test with the package
// to install.
func Mount(tb testing.TB, o Options) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("not root: mounting a loop device needs root (CI runs as root)")
	}
	if o.Type == "" {
		o.Type = "ext4"
	}
	if o.SizeMiB == 0 {
		o.SizeMiB = 64
		if o.Type == "xfs" {
			o.SizeMiB = 320
		}
	}
	mkfs := "mkfs." + o.Type
	for _, tool := range []string{mkfs, "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("%s not found: run scripts/setup.sh (installs e2fsprogs, xfsprogs, mount)", tool)
		}
	}
	dir := tb.TempDir()
	img, mnt := filepath.Join(dir, o.Type+".img"), filepath.Join(dir, "mnt")
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(int64(o.SizeMiB) << 20); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	args := append([]string{"-q"}, o.Mkfs...)
	if o.Type == "ext4" {
		args = append(args, "-F")
	} else {
		args = append(args, "-f")
	}
	run(mkfs, append(args, img)...)
	losetup := []string{"--find", "--show"}
	if o.DirectIO {
		losetup = append(losetup, "--direct-io=on")
	}
	dev := run("losetup", append(losetup, img)...)
	tb.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			tb.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	margs := []string{"-t", o.Type}
	if o.Mount != "" {
		margs = append(margs, "-o", o.Mount)
	}
	run("mount", append(margs, dev, mnt)...)
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// Options of the mount as /proc/mounts shows them, for checks.
func MountOptions(tb testing.TB, mnt string) string {
	tb.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == mnt {
			return f[2] + " " + f[3]
		}
	}
	tb.Fatalf("%s not in /proc/mounts", mnt)
	return ""
}
