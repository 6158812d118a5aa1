package merge

import (
	"fmt"
	"slices"

	"github.com/lockscope/lockscope/internal/jfr"
)

// Stop-the-world pauses: while one lasts no Java thread runs, so whatever a
// thread waited for then, the pause held it up. The JDK Flight Recorder
// records them (lockscope.jfc enables the events): jdk.GCPhasePause for a
// collection's pauses, jdk.SafepointBegin and jdk.SafepointEnd (paired by
// safepointId) for every safepoint, collections or not, and
// jdk.ExecuteVMOperation for the operation a safepoint ran. async-profiler
// records them only with its jfrsync option.

// pause is one stop-the-world stretch, CLOCK_MONOTONIC.
type pause struct {
	start, end int64
	gc         bool
	what       string // "GC pause (G1 Evacuation Pause)", "safepoint (ThreadDump)"
	gcID       int64
}

// pauseLog gathers the pause events of a recording.
type pauseLog struct {
	list []pause
	// safepoints open by id (their begin), and GC names by gcId.
	begins  map[int64]int64
	gcCause map[int64]string
	ops     []pause // VM operations run at a safepoint
}

// event reads one JFR event if it is a pause event; t is its monotonic
// start.
func (pl *pauseLog) event(ev *jfr.Event, t int64) bool {
	switch ev.Type.Name {
	case "jdk.GCPhasePause":
		id, _ := ev.Int("gcId")
		pl.list = append(pl.list, pause{start: t, end: t + ev.Duration(), gc: true, gcID: id, what: "GC pause"})
	case "jdk.GarbageCollection":
		id, _ := ev.Int("gcId")
		name, _ := ev.String("name")
		cause, _ := ev.String("cause")
		if pl.gcCause == nil {
			pl.gcCause = map[int64]string{}
		}
		pl.gcCause[id] = fmt.Sprintf("%s, %s", name, cause)
	case "jdk.SafepointBegin":
		id, _ := ev.Int("safepointId")
		if pl.begins == nil {
			pl.begins = map[int64]int64{}
		}
		pl.begins[id] = t
		// Until its end is seen, the synchronization (the event's own
		// duration) is the part known to have stopped the threads.
		pl.list = append(pl.list, pause{start: t, end: t + ev.Duration(), what: "safepoint"})
	case "jdk.SafepointEnd":
		id, _ := ev.Int("safepointId")
		if b, ok := pl.begins[id]; ok && t > b {
			pl.list = append(pl.list, pause{start: b, end: t, what: "safepoint"})
			delete(pl.begins, id)
		}
	case "jdk.ExecuteVMOperation":
		if sp, ok := ev.Int("safepoint"); ok && sp == 0 {
			return true
		}
		op, _ := ev.String("operation")
		pl.ops = append(pl.ops, pause{start: t, end: t + ev.Duration(), what: op})
	default:
		return false
	}
	return true
}

// pauseEvents are the event types pauseLog reads.
var pauseEvents = map[string]bool{
	"jdk.GCPhasePause": true, "jdk.GarbageCollection": true, "jdk.SafepointBegin": true,
	"jdk.SafepointEnd": true, "jdk.ExecuteVMOperation": true,
}

// pauses returns the stop-the-world stretches, sorted and without
// overlaps; a stretch that overlaps a GC pause is named by the collection.
func (pl *pauseLog) pauses() []pause {
	if len(pl.list) == 0 {
		return nil
	}
	ps := slices.Clone(pl.list)
	slices.SortFunc(ps, func(a, b pause) int { return cmpInt(a.start, b.start) })
	var out []pause
	for _, p := range ps {
		if p.end <= p.start {
			continue
		}
		if p.gc {
			p.what = "GC pause"
			if c := pl.gcCause[p.gcID]; c != "" {
				p.what = "GC pause (" + c + ")"
			}
		}
		if n := len(out); n > 0 && p.start <= out[n-1].end {
			last := &out[n-1]
			last.end = max(last.end, p.end)
			if p.gc && !last.gc {
				last.gc, last.what = true, p.what
			}
			continue
		}
		out = append(out, p)
	}
	for i := range out {
		if out[i].gc {
			continue
		}
		for _, op := range pl.ops {
			if op.start < out[i].end && op.end > out[i].start && op.what != "" {
				out[i].what = "safepoint (" + op.what + ")"
				break
			}
		}
	}
	return out
}
