package doctor

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// allegro is what the investigation that motivated lockscope measured.
const allegro = "Allegro (2024): under data=ordered, ext4 journal commits (jbd2) stalled writes inside the log's lock (UnifiedLog.append) and every request handler queued behind it; data=writeback cut produce p999 from 3 s to 800 ms, fast_commit to 500 ms, XFS removed 82% of the requests over a 65 ms SLO"

// mountOf returns the mount of mounts that holds path, whose device number
// is dev: among the mounts of that device, the one whose mount point is the
// longest prefix of path (a device mounted twice, or bind-mounted, has
// several).
func mountOf(mounts []*mountinfo.Info, path string, major, minor int) *mountinfo.Info {
	var best *mountinfo.Info
	var fallback *mountinfo.Info
	for _, m := range mounts {
		if m.Major != major || m.Minor != minor {
			continue
		}
		fallback = m
		if m.Mountpoint == "/" || path == m.Mountpoint || strings.HasPrefix(path, m.Mountpoint+"/") {
			if best == nil || len(m.Mountpoint) > len(best.Mountpoint) {
				best = m
			}
		}
	}
	if best == nil {
		return fallback
	}
	return best
}

// fsGroup is one filesystem holding one or more log dirs.
type fsGroup struct {
	mount *mountinfo.Info
	dirs  []string
	bdev  string // the kernel's name of the block device, e.g. "vda", "dm-0"
	root  string // prefix that makes the JVM's paths host paths
	pid   int    // the broker's, 0 if unknown
	fs    *Filesystem
}

// Filesystem is what doctor learnt of the filesystem holding one or more
// log dirs. Fields that do not apply to its type, or could not be learnt,
// are zero (nil for the yes/no ones).
type Filesystem struct {
	Dirs       []string `json:"dirs"`
	Source     string   `json:"dirs_from"` // where the dirs came from, e.g. "log.dirs in FILE"
	Mountpoint string   `json:"mountpoint"`
	Type       string   `json:"type"`
	Device     string   `json:"device"`
	Options    string   `json:"options"` // per-mount, then superblock options
	// ext4
	Journal        *bool         `json:"journal,omitempty"` // a jbd2 journal is loaded
	DataMode       string        `json:"data_mode,omitempty"`
	FastCommit     *bool         `json:"fast_commit,omitempty"`
	CommitInterval time.Duration `json:"commit_interval_ns,omitempty"`
	JournalCommits int64         `json:"journal_commits,omitempty"` // since mount
	AvgCommit      time.Duration `json:"avg_commit_ns,omitempty"`
	// XFS
	LogBytes int64 `json:"xfs_log_bytes,omitempty"`
}

// logDirChecks finds the filesystem of each log dir, as the process pid
// sees it (0: lockscope itself), and checks each filesystem once.
func logDirChecks(ctx context.Context, r *Report, pid int, dirs []string, source string) {
	root, mi := "", "/proc/self/mountinfo"
	if pid > 0 {
		root, mi = "/proc/"+strconv.Itoa(pid)+"/root", "/proc/"+strconv.Itoa(pid)+"/mountinfo"
	}
	f, err := os.Open(mi)
	if err != nil {
		r.add(Warn, "log dir", strings.Join(dirs, ", ")+": reading the mount table: "+err.Error(), "run lockscope as root")
		return
	}
	mounts, err := mountinfo.GetMountsFromReader(f, nil)
	f.Close()
	if err != nil {
		r.add(Warn, "log dir", strings.Join(dirs, ", ")+": parsing "+mi+": "+err.Error(), "")
		return
	}
	var groups []*fsGroup
	for _, dir := range dirs {
		var st unix.Stat_t
		if err := unix.Stat(root+dir, &st); err != nil {
			fix := "check " + source
			if errors.Is(err, unix.ENOENT) {
				fix = "create it, or fix " + source + " (the broker creates a missing log dir at start-up)"
			}
			r.add(Warn, "log dir", dir+" ("+source+"): "+err.Error(), fix)
			continue
		}
		major, minor := int(unix.Major(st.Dev)), int(unix.Minor(st.Dev))
		m := mountOf(mounts, dir, major, minor)
		if m == nil {
			r.add(Warn, "log dir", fmt.Sprintf("%s (%s): no mount of device %d:%d in %s", dir, source, major, minor, mi), "")
			continue
		}
		i := slices.IndexFunc(groups, func(g *fsGroup) bool { return g.mount.ID == m.ID })
		if i >= 0 {
			groups[i].dirs = append(groups[i].dirs, dir)
			continue
		}
		g := &fsGroup{mount: m, dirs: []string{dir}, root: root, pid: pid}
		if link, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)); err == nil {
			g.bdev = filepath.Base(link)
		}
		groups = append(groups, g)
	}
	for _, g := range groups {
		fsChecks(ctx, r, g, source)
	}
}

func fsChecks(ctx context.Context, r *Report, g *fsGroup, source string) {
	m := g.mount
	where := m.Mountpoint
	g.fs = &Filesystem{Dirs: g.dirs, Source: source, Mountpoint: m.Mountpoint, Type: m.FSType, Device: m.Source,
		Options: strings.Trim(m.Options+","+m.VFSOptions, ",")}
	defer func() { r.Filesystems = append(r.Filesystems, *g.fs) }()
	r.add(Info, "log dir", fmt.Sprintf("%s (%s) on %s %s mounted at %s (%s)", strings.Join(g.dirs, ", "), source, m.FSType, m.Source, m.Mountpoint, m.VFSOptions), "")
	switch m.FSType {
	case "ext4", "ext3":
		ext4Checks(r, g)
		atimeCheck(r, where, m.Options)
	case "xfs":
		xfsChecks(ctx, r, g)
		atimeCheck(r, where, m.Options)
	case "tmpfs", "ramfs":
		r.add(Warn, "filesystem", where+": "+m.FSType+" keeps the logs in memory: they are lost at reboot and measurements here say nothing about a disk",
			"point "+source+" at a disk filesystem")
	case "overlay", "aufs":
		r.add(Warn, "filesystem", where+": the container's "+m.FSType+" root: every write goes through copy-up and the upper layer's filesystem",
			"mount a volume for the log dirs")
	case "nfs", "nfs4", "cifs", "smb3", "fuse.sshfs":
		r.add(Warn, "filesystem", where+": network filesystem "+m.FSType+": Kafka does not support log dirs on network filesystems",
			"use a local disk")
	default:
		r.add(Info, "filesystem", where+": "+m.FSType+": lockscope has no specific advice for it; its filesystem tracer measures it like any other", "")
		atimeCheck(r, where, m.Options)
	}
}

// ext4Checks reports the journal and its mode. The kernel's own view is
// preferred to the superblock: /sys/fs/ext4/DEV/journal_task says whether
// a journal is loaded, /proc/fs/ext4/DEV/options gives every option in force
// (defaults included).
func ext4Checks(r *Report, g *fsGroup) {
	where := g.mount.Mountpoint
	opts := mountOptions(g.mount.VFSOptions)
	if b, err := os.ReadFile("/proc/fs/ext4/" + g.bdev + "/options"); err == nil && g.bdev != "" {
		opts = procOptions(b)
	}
	var sb *ext4Super
	var sbErr error
	if g.bdev != "" {
		sb, sbErr = readExt4Super("/dev/" + g.bdev)
	} else {
		sbErr = errors.New("block device unknown")
	}

	journal, known := false, false
	if b, err := os.ReadFile("/sys/fs/ext4/" + g.bdev + "/journal_task"); err == nil && g.bdev != "" {
		journal, known = strings.TrimSpace(string(b)) != "<none>", true
	} else if sb != nil {
		journal, known = sb.HasJournal, true
	} else if m, _ := filepath.Glob("/proc/fs/jbd2/" + g.bdev + "-*"); g.bdev != "" {
		journal, known = len(m) > 0, true
	}
	if known {
		g.fs.Journal = &journal
	}
	switch {
	case !known:
		r.add(Warn, "ext4 journal", where+": cannot tell whether it has a journal", "run lockscope as root")
		return
	case !journal:
		why := "made without has_journal"
		if _, ok := opts["noload"]; ok {
			why = "mounted with noload"
		} else if sb != nil && sb.HasJournal {
			why = "journal not loaded"
		}
		r.add(Info, "ext4 journal", where+": none ("+why+"): no jbd2 commits for writes to wait on, so the stall this tool was built to find cannot happen here; after a crash fsck runs before the broker's own log recovery", "")
		return
	}
	detail := where + ": jbd2"
	switch st, err := jbd2Stats(g.bdev); {
	case err != nil:
	case st.Transactions == 0:
		detail += ", no commits yet"
	default:
		detail += fmt.Sprintf(", %d commits so far, average commit %s", st.Transactions, st.AvgCommit)
		g.fs.JournalCommits, g.fs.AvgCommit = st.Transactions, st.AvgCommit
	}
	broker := "PID"
	if g.pid > 0 {
		broker = strconv.Itoa(g.pid)
	}
	r.add(Info, "ext4 journal", detail, "lockscope fs --pid "+broker+" shows the broker's writes that wait for its commits")

	dev := "/dev/" + g.bdev
	if g.bdev == "" {
		dev = g.mount.Source
	}
	mode := cmp.Or(opts["data"], "ordered")
	g.fs.DataMode = mode
	switch mode {
	case "writeback":
		r.add(Pass, "ext4 data mode", where+": data=writeback: journal commits do not wait for file data to reach the disk. "+allegro, "")
	case "journal":
		r.add(Warn, "ext4 data mode", where+": data=journal: every byte is written twice, through the journal, and each commit carries the data",
			"remount with data=writeback (needs a full umount and mount; set it in /etc/fstab), or move the log dirs to XFS. "+allegro)
	default:
		r.add(Warn, "ext4 data mode", where+": data="+mode+" (ext4's default): every journal commit first writes out the data of the files it covers, and a write that waits for the commit holds the log's lock",
			"mount with data=writeback (not on remount: umount, then mount -o data=writeback, or set it in /etc/fstab; tune2fs -o journal_data_writeback "+dev+" makes it the default), or enable fast_commit, or move the log dirs to XFS; Kafka's recovery checks batch CRCs after an unclean shutdown. "+allegro)
	}

	if sb != nil {
		g.fs.FastCommit = &sb.FastCommit
	}
	switch {
	case sb == nil:
		r.add(Info, "ext4 fast_commit", where+": unknown, reading the superblock of "+dev+": "+errText(sbErr), "dumpe2fs -h "+dev+" | grep features")
	case sb.FastCommit:
		detail := where + ": enabled: fsync commits only the changed inodes' deltas"
		if c, inel, err := fastCommitStats(g.bdev); err == nil {
			detail += fmt.Sprintf(" (%d fast commits, %d fell back to full commits)", c, inel)
		}
		r.add(Pass, "ext4 fast_commit", detail, "")
	default:
		r.add(Warn, "ext4 fast_commit", where+": off: every fsync waits for a full jbd2 commit",
			"tune2fs -O fast_commit "+dev+" while unmounted (e2fsprogs 1.46+, kernel 5.10+)")
	}

	interval := "5 s (default)"
	g.fs.CommitInterval = 5 * time.Second
	if v, ok := opts["commit"]; ok && v != "5" && v != "0" {
		interval = v + " s"
		if n, err := strconv.Atoi(v); err == nil {
			g.fs.CommitInterval = time.Duration(n) * time.Second
		}
	}
	r.add(Info, "ext4 commit", where+": commit="+interval+": jbd2 commits at least this often; a longer interval makes fewer but larger commits for an fsync to wait behind", "")
}

// mountOptions splits a comma-separated option list into a map.
func mountOptions(s string) map[string]string {
	opts := map[string]string{}
	for _, o := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(o, "=")
		if k != "" {
			opts[k] = v
		}
	}
	return opts
}

// procOptions reads /proc/fs/ext4/DEV/options, one option a line.
func procOptions(b []byte) map[string]string {
	return mountOptions(strings.Join(strings.Fields(string(b)), ","))
}

// atimeCheck judges access-time updates, which turn reads (consumers
// catching up) into inode writes for the journal.
func atimeCheck(r *Report, where, options string) {
	opts := mountOptions(options)
	switch _, noatime := opts["noatime"]; {
	case noatime:
		r.add(Pass, "atime", where+": noatime: reads never write inodes", "")
	case hasKey(opts, "relatime"):
		r.add(Info, "atime", where+": relatime: a read updates a file's access time at most once a day", "noatime removes even that")
	default:
		r.add(Warn, "atime", where+": strictatime: every read of a segment writes its inode, which the journal then commits",
			"mount with noatime (or relatime)")
	}
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// ext4Super is what lockscope reads from an ext4 superblock.
type ext4Super struct {
	HasJournal bool
	FastCommit bool
	// DefaultData is the data mode set with tune2fs -o journal_data*, or
	// "" when the superblock sets none.
	DefaultData string
}

// Superblock layout of fs/ext4/ext4.h.
const (
	ext4SuperOffset  = 1024
	ext4Magic        = 0xEF53
	offMagic         = 0x38
	offFeatureCompat = 0x5C
	offDefaultMount  = 0x100
	compatHasJournal = 0x0004
	compatFastCommit = 0x0400
	defmJMode        = 0x0060
)

// parseExt4Super reads the fields lockscope needs from the 1024 bytes of a
// superblock.
func parseExt4Super(b []byte) (*ext4Super, error) {
	if len(b) < offDefaultMount+4 {
		return nil, io.ErrUnexpectedEOF
	}
	if m := binary.LittleEndian.Uint16(b[offMagic:]); m != ext4Magic {
		return nil, fmt.Errorf("no ext4 superblock (magic %#x)", m)
	}
	compat := binary.LittleEndian.Uint32(b[offFeatureCompat:])
	s := &ext4Super{HasJournal: compat&compatHasJournal != 0, FastCommit: compat&compatFastCommit != 0}
	switch binary.LittleEndian.Uint32(b[offDefaultMount:]) & defmJMode {
	case 0x20:
		s.DefaultData = "journal"
	case 0x40:
		s.DefaultData = "ordered"
	case 0x60:
		s.DefaultData = "writeback"
	}
	return s, nil
}

func readExt4Super(dev string) (*ext4Super, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 1024)
	if _, err := f.ReadAt(b, ext4SuperOffset); err != nil {
		return nil, fmt.Errorf("reading %s: %w", dev, err)
	}
	return parseExt4Super(b)
}

// jbd2Info is the head of /proc/fs/jbd2/DEV-N/info.
type jbd2Info struct {
	Transactions int64
	AvgCommit    time.Duration
}

var (
	jbd2TxRE     = regexp.MustCompile(`^(\d+) transactions`)
	jbd2CommitRE = regexp.MustCompile(`(\d+)us average transaction commit time`)
)

func parseJBD2Info(b []byte) (jbd2Info, error) {
	var st jbd2Info
	m := jbd2TxRE.FindSubmatch(b)
	if m == nil {
		return st, errors.New("no transactions line")
	}
	st.Transactions, _ = strconv.ParseInt(string(m[1]), 10, 64)
	if m := jbd2CommitRE.FindSubmatch(b); m != nil {
		us, _ := strconv.ParseInt(string(m[1]), 10, 64)
		st.AvgCommit = time.Duration(us) * time.Microsecond
	}
	return st, nil
}

func jbd2Stats(bdev string) (jbd2Info, error) {
	m, _ := filepath.Glob("/proc/fs/jbd2/" + bdev + "-*/info")
	if bdev == "" || len(m) == 0 {
		return jbd2Info{}, fs.ErrNotExist
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		return jbd2Info{}, err
	}
	return parseJBD2Info(b)
}

// fastCommitStats reads the commit counts of /proc/fs/ext4/DEV/fc_info.
func fastCommitStats(bdev string) (commits, ineligible int64, err error) {
	b, err := os.ReadFile("/proc/fs/ext4/" + bdev + "/fc_info")
	if err != nil {
		return 0, 0, err
	}
	return parseFCInfo(b)
}

func parseFCInfo(b []byte) (commits, ineligible int64, err error) {
	var haveC, haveI bool
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "commits":
			commits, haveC = n, true
		case "ineligible":
			ineligible, haveI = n, true
		}
	}
	if !haveC || !haveI {
		return 0, 0, errors.New("no commit counts")
	}
	return commits, ineligible, nil
}

// xfsLog is what xfs_info says of the log.
type xfsLog struct {
	Internal bool
	Bytes    int64
}

var xfsLogRE = regexp.MustCompile(`(?m)^log\s+=(internal log|\S+)\s+bsize=(\d+)\s+blocks=(\d+)`)

func parseXFSInfo(b []byte) (xfsLog, error) {
	m := xfsLogRE.FindSubmatch(b)
	if m == nil {
		return xfsLog{}, errors.New("no log line in xfs_info's output")
	}
	bsize, err1 := strconv.ParseInt(string(m[2]), 10, 64)
	blocks, err2 := strconv.ParseInt(string(m[3]), 10, 64)
	if err1 != nil || err2 != nil || bsize > 1<<20 || blocks > 1<<40 {
		return xfsLog{}, fmt.Errorf("xfs_info's log line %q is out of range", m[0])
	}
	return xfsLog{Internal: string(m[1]) == "internal log", Bytes: bsize * blocks}, nil
}

func xfsChecks(ctx context.Context, r *Report, g *fsGroup) {
	where := g.mount.Mountpoint
	r.add(Pass, "xfs", where+": XFS: "+allegro, "")
	opts := mountOptions(g.mount.VFSOptions)
	log := "log size unknown"
	if _, err := exec.LookPath("xfs_info"); err != nil {
		log += " (xfs_info not found: install xfsprogs)"
	} else {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(ctx, "xfs_info", g.root+g.mount.Mountpoint).Output()
		cancel()
		if l, perr := parseXFSInfo(out); err == nil && perr == nil {
			kind := "internal"
			if !l.Internal {
				kind = "external"
			}
			log = fmt.Sprintf("%s log of %d MiB", kind, l.Bytes>>20)
			g.fs.LogBytes = l.Bytes
		} else if err != nil {
			log += " (xfs_info: " + err.Error() + ")"
		}
	}
	bs := opts["logbsize"]
	if bs == "" {
		bs = "default"
	}
	detail := fmt.Sprintf("%s: %s, logbufs=%s, logbsize=%s", where, log, cmp.Or(opts["logbufs"], "default"), bs)
	if n, err := parseSize(opts["logbsize"]); err == nil && n < 256<<10 {
		r.add(Info, "xfs log", detail+": fsync-heavy writers force the log out in buffers of this size",
			"logbsize=256k (the largest) writes the log in fewer, larger I/Os: mount -o logbsize=256k")
		return
	}
	r.add(Info, "xfs log", detail, "")
}

// parseSize reads a mount option size such as "32k" or "262144".
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, s = 1<<10, s[:len(s)-1]
	case 'm', 'M':
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}
