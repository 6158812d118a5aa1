package fslens

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of /proc/PID/mountinfo: a filesystem as the process
// sees it.
type Mount struct {
	// Dev is the device in the encoding of stat(2) (unix.Mkdev).
	Dev        uint64
	Root       string // the directory of the filesystem mounted here
	MountPoint string
	FSType     string
	Source     string
	// Options are the mount's options followed by the superblock's
	// ("rw,relatime,rw,data=ordered"), where ext4's data= and XFS's log
	// options live.
	Options string
}

// DevString is Dev as mountinfo writes it, "major:minor".
func DevString(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

// ParseMountinfo reads the format of proc(5) /proc/PID/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Octal escapes (\040 for a space) in paths are decoded. A malformed line
// is an error naming its number.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n, line)
		}
		maj, min, ok := strings.Cut(f[2], ":")
		major, err1 := strconv.ParseUint(maj, 10, 32)
		minor, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo line %d: malformed device %q", n, f[2])
		}
		m := Mount{
			Dev:        unix.Mkdev(uint32(major), uint32(minor)),
			Root:       unescape(f[3]),
			MountPoint: unescape(f[4]),
			FSType:     f[sep+1],
			Source:     unescape(f[sep+2]),
			Options:    f[5],
		}
		if len(f) > sep+3 {
			m.Options += "," + f[sep+3]
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return out, nil
}

// unescape decodes the \ooo escapes the kernel writes for space, tab,
// newline and backslash.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ByDev indexes mounts by device, keeping for each the mount of the
// filesystem's root if there is one (bind mounts show subdirectories), else
// the first.
func ByDev(mounts []Mount) map[uint64]Mount {
	out := map[uint64]Mount{}
	for _, m := range mounts {
		if old, ok := out[m.Dev]; !ok || (old.Root != "/" && m.Root == "/") {
			out[m.Dev] = m
		}
	}
	return out
}
