package fslens

import (
	"fmt"
	"io"

	"github.com/moby/sys/mountinfo"
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
// with github.com/moby/sys/mountinfo (the parser of runc and containerd,
// also lockscope doctor's), which decodes the octal escapes (\040 for a
// space) in paths. A malformed line is an error quoting it.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	infos, err := mountinfo.GetMountsFromReader(r, nil)
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	out := make([]Mount, 0, len(infos))
	for _, in := range infos {
		m := Mount{Dev: unix.Mkdev(uint32(in.Major), uint32(in.Minor)), Root: in.Root, MountPoint: in.Mountpoint,
			FSType: in.FSType, Source: in.Source, Options: in.Options}
		if in.VFSOptions != "" {
			m.Options += "," + in.VFSOptions
		}
		out = append(out, m)
	}
	return out, nil
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
