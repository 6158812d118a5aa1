package fslens

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
)

// Resolver maps the (device, inode) of a target's file operation to the
// file's path, topic-partition and kind.
//
// It looks first in its cache, then in the target's open files
// (/proc/PID/fd, rescanned at most once per RescanEvery), then in the
// directories of the files it already knows on that device and their
// parents: Kafka writes a checkpoint to a new file, syncs, closes and
// renames it, so by the time its slow fsync is read the file is no longer
// open, but it lies next to the other checkpoints of the log directory. A
// file found nowhere is retried after RescanEvery and meanwhile shown by
// device and inode.
type Resolver struct {
	// Proc is the procfs root (default "/proc"); tests point it elsewhere.
	Proc string
	// RescanEvery bounds how often a miss rescans (default 1s).
	RescanEvery time.Duration

	files    map[fileKey]*bundle.FSFileInfo
	misses   map[fileKey]time.Time
	lastScan map[int]time.Time
	dirs     map[uint64]map[string]bool // per device, directories to search
	now      func() time.Time
}

type fileKey struct {
	pid      int
	dev, ino uint64
}

// NewResolver returns an empty resolver on /proc.
func NewResolver() *Resolver {
	return &Resolver{Proc: "/proc", RescanEvery: time.Second, files: map[fileKey]*bundle.FSFileInfo{},
		misses: map[fileKey]time.Time{}, lastScan: map[int]time.Time{}, dirs: map[uint64]map[string]bool{}, now: time.Now}
}

// Info describes a file at path on dev: topic, partition and kind from the
// path. An empty path gives an unresolved file.
func Info(p string, dev, ino uint64) *bundle.FSFileInfo {
	topic, part, kind := Classify(p)
	return &bundle.FSFileInfo{Path: p, Dev: DevString(dev), Ino: ino, Topic: topic, Partition: part, Kind: kind}
}

// File resolves (dev, ino) of process pid. It never fails: a file it
// cannot find has an empty Path.
func (r *Resolver) File(pid int, dev, ino uint64) *bundle.FSFileInfo {
	k := fileKey{pid, dev, ino}
	if f, ok := r.files[k]; ok {
		return f
	}
	now := r.now()
	if t, ok := r.misses[k]; ok && now.Sub(t) < r.RescanEvery {
		return Info("", dev, ino)
	}
	if now.Sub(r.lastScan[pid]) >= r.RescanEvery || r.lastScan[pid].IsZero() {
		r.lastScan[pid] = now
		r.ScanFDs(pid)
		if f, ok := r.files[k]; ok {
			delete(r.misses, k)
			return f
		}
	}
	if p := r.searchDirs(pid, dev, ino); p != "" {
		f := r.add(k, p)
		delete(r.misses, k)
		return f
	}
	r.misses[k] = now
	return Info("", dev, ino)
}

func (r *Resolver) add(k fileKey, p string) *bundle.FSFileInfo {
	f := Info(p, k.dev, k.ino)
	r.files[k] = f
	d := r.dirs[k.dev]
	if d == nil {
		d = map[string]bool{}
		r.dirs[k.dev] = d
	}
	// The file's directory and its parent: a partition directory's
	// parent is the log directory with the checkpoints.
	dir := path.Dir(p)
	d[dir] = true
	if parent := path.Dir(dir); parent != dir {
		d[parent] = true
	}
	return f
}

// ScanFDs reads the open files of pid into the cache. Errors (the process
// is gone, a descriptor closed meanwhile) leave the cache as it was.
func (r *Resolver) ScanFDs(pid int) {
	fdDir := fmt.Sprintf("%s/%d/fd", r.Proc, pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		link := fdDir + "/" + e.Name()
		target, err := os.Readlink(link)
		if err != nil || !strings.HasPrefix(target, "/") {
			continue // sockets, pipes, anon inodes
		}
		var st syscall.Stat_t
		if err := syscall.Stat(link, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			continue
		}
		target = strings.TrimSuffix(target, " (deleted)")
		k := fileKey{pid, uint64(st.Dev), uint64(st.Ino)}
		if old, ok := r.files[k]; !ok || old.Path != target {
			r.add(k, target)
		}
	}
}

// searchDirs looks for the inode in the known directories of dev, through
// the target's root (its mount namespace), or through ours once the target
// is gone.
func (r *Resolver) searchDirs(pid int, dev, ino uint64) string {
	root := fmt.Sprintf("%s/%d/root", r.Proc, pid)
	if _, err := os.Stat(root + "/"); err != nil {
		root = ""
	}
	for dir := range r.dirs[dev] {
		ents, err := os.ReadDir(root + dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && uint64(st.Ino) == ino && uint64(st.Dev) == dev {
				return path.Join(dir, e.Name())
			}
		}
	}
	return ""
}

// Mounts reads the mounts of pid (its mount namespace), falling back to
// this process's.
func Mounts(pid int) ([]Mount, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		if f, err = os.Open("/proc/self/mountinfo"); err != nil {
			return nil, fmt.Errorf("reading mounts: %w", err)
		}
	}
	defer f.Close()
	return ParseMountinfo(f)
}
