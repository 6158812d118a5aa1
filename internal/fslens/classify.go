package fslens

import (
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Kinds of files in a Kafka log directory (bundle.FSFileInfo.Kind).
const (
	KindLog        = "log"        // a segment: 00000000000000000000.log
	KindIndex      = "index"      // offset or transaction index
	KindTimeIndex  = "timeindex"  // time index
	KindSnapshot   = "snapshot"   // producer state snapshot
	KindCheckpoint = "checkpoint" // recovery-point-offset-checkpoint, leader-epoch-checkpoint, ...
	KindOther      = "other"
)

// A partition directory is topic-N; topic names are [a-zA-Z0-9._-]+ and may
// themselves end in -digits, so the last -N is the partition. A partition
// being deleted, moved between log dirs or left over is renamed
// topic-N.UUID-delete, -future or -stray.
var partitionDir = regexp.MustCompile(`^([a-zA-Z0-9._-]+)-([0-9]+)(?:\.[0-9a-f]{32}-(?:delete|future|stray))?$`)

// Suffixes Kafka adds while it rewrites or removes a file: the file is
// still what its name before them says.
var transientSuffixes = []string{".tmp", ".deleted", ".cleaned", ".swap"}

// Classify places a path in a Kafka log directory: the topic and partition
// of the directory holding it (partition -1 when it is not in a partition
// directory) and the file's kind.
func Classify(p string) (topic string, partition int, kind string) {
	partition = -1
	if p == "" {
		return "", -1, KindOther
	}
	dir, name := path.Split(p)
	if m := partitionDir.FindStringSubmatch(path.Base(path.Clean(dir))); m != nil && dir != "" && dir != "/" {
		if n, err := strconv.Atoi(m[2]); err == nil {
			topic, partition = m[1], n
		}
	}
	return topic, partition, fileKind(name)
}

func fileKind(name string) string {
	for changed := true; changed; {
		changed = false
		for _, s := range transientSuffixes {
			if n, ok := strings.CutSuffix(name, s); ok && n != "" {
				name, changed = n, true
			}
		}
	}
	switch ext := path.Ext(name); {
	case ext == ".log":
		return KindLog
	case ext == ".index" || ext == ".txnindex":
		return KindIndex
	case ext == ".timeindex":
		return KindTimeIndex
	case ext == ".snapshot":
		return KindSnapshot
	case strings.HasSuffix(name, "-checkpoint"):
		// recovery-point-offset-checkpoint, replication-offset-checkpoint,
		// log-start-offset-checkpoint, cleaner-offset-checkpoint,
		// leader-epoch-checkpoint.
		return KindCheckpoint
	}
	return KindOther
}
