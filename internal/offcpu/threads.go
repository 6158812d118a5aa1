package offcpu

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ThreadNames caches /proc/TGID/task/TID/comm for one reader (it is not
// safe for concurrent use). JVM threads name themselves
// after they start and may be renamed (thread pools), so a name is re-read
// once it is older than threadNameTTL; a thread that is gone keeps its last
// known name.
type ThreadNames struct {
	m   map[uint32]threadName
	now func() time.Time
}

type threadName struct {
	name string
	read time.Time
}

const threadNameTTL = time.Second

// NewThreadNames returns an empty cache.
func NewThreadNames() *ThreadNames {
	return &ThreadNames{m: map[uint32]threadName{}, now: time.Now}
}

// Get returns the name of thread tid of process tgid; tgid 0 means unknown.
func (t *ThreadNames) Get(tgid, tid uint32) string {
	now := t.now()
	if n, ok := t.m[tid]; ok && now.Sub(n.read) < threadNameTTL {
		return n.name
	}
	path := fmt.Sprintf("/proc/%d/task/%d/comm", tgid, tid)
	if tgid == 0 {
		// Any thread of any process: /proc/TID works although
		// only process ids are listed there.
		path = fmt.Sprintf("/proc/%d/comm", tid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		n := t.m[tid]
		n.read = now
		t.m[tid] = n
		return n.name
	}
	name := strings.TrimSuffix(string(b), "\n")
	t.m[tid] = threadName{name: name, read: now}
	return name
}

// Prime reads the names of all current threads of tgid, so threads that
// end before they are first seen still have a name.
func (t *ThreadNames) Prime(tgid uint32) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", tgid))
	if err != nil {
		return
	}
	for _, e := range ents {
		if tid, err := strconv.ParseUint(e.Name(), 10, 32); err == nil {
			t.Get(tgid, uint32(tid))
		}
	}
}
