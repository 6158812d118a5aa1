package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/latency"
)

// A capture killed with SIGKILL (the OOM killer, a node drain) runs none of
// its own cleanup: its bundle keeps the streams written out so far and the
// provisional meta.json, and the profiler, which has its own deadline, goes
// on in the JVM and leaves its recording in the JVM's /tmp. Recover turns
// that into a finished bundle.

// recordingSettle is how long after its deadline a profiler may take to
// write its recording out (the JDK copies its chunks to the file then).
const recordingSettle = 30 * time.Second

// Recovery is what Recover made of an unfinished bundle.
type Recovery struct {
	// Recording is where the JFR recording was collected from; empty
	// when there was none.
	Recording string
	// Warnings say what was recovered and what is missing, the first
	// being the headline; they are added to the bundle's meta.json.
	Warnings []string
}

// Recover finishes the bundle of a capture that did not finish (one with a
// provisional meta.json): it collects the JFR recording from where the JVM
// wrote it, once the JVM has finished writing it (waiting up to the
// profiler's own deadline while the JVM runs), cuts the partial lines the
// kill left at the end of the streams, takes the capture's end from the
// last data collected and writes the final meta.json, whose warnings say
// what is missing. Until it writes the recording into the bundle it
// changes nothing, so that interrupting the wait leaves the bundle as it
// was. Progress, if not nil, is told what it waits for and finds.
func Recover(dir string, progress io.Writer) (*Recovery, error) {
	if progress == nil {
		progress = io.Discard
	}
	w, meta, err := bundle.OpenUnfinished(dir)
	if err != nil {
		return nil, err
	}
	rec := &Recovery{}
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }

	recPart, err := recoverRecording(w, meta, rec, progress)
	if err != nil {
		return nil, err
	}

	// The streams end where the last write before the kill ended.
	for _, name := range []string{bundle.OffCPUFile, bundle.FSStreamFile, bundle.RequestsFile, bundle.FetchesFile} {
		p := w.Path(name)
		if !exists(p) {
			continue
		}
		dropped, err := bundle.TrimStream(p)
		if err != nil {
			return nil, fmt.Errorf("recovering %s: %w", dir, err)
		}
		if dropped > 0 {
			note("%s ended in a line cut by the kill: dropped 1 partial line (%d bytes)", name, dropped)
		}
		if st, err := os.Stat(p); err == nil && st.Size() == 0 {
			// Nothing was written out: an empty stream would not read.
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("recovering %s: %w", dir, err)
			}
			if name != bundle.RequestsFile || !isFileSource(meta) {
				note("%s: nothing of it was written out before the kill", name)
			}
		}
	}
	// A latency file is read at the end of a capture, which never came:
	// read it now.
	if isFileSource(meta) && !exists(w.Path(bundle.RequestsFile)) {
		if err := recoverLatencyFile(w, meta); err != nil {
			note("no requests: reading the latency source %s: %v", meta.Latency.Source, err)
		}
	}

	end, err := recoverEnd(w, meta)
	if err != nil {
		return nil, fmt.Errorf("recovering %s: %w", dir, err)
	}
	if end <= meta.Start {
		end = max(meta.Start, profilerStarted(meta))
		note("no data collected before the kill carries a time: the capture's end is taken as its start")
	}
	meta.End = end
	// No clock pair was sampled at the end: the start's offset is taken to
	// hold (NTP slews the wall clock by microseconds over a capture).
	s := meta.Clock.Start
	meta.Clock.End = clock.Pair{Monotonic: end, Realtime: end + s.Offset(), Uncertainty: s.Uncertainty}
	meta.Ended = "killed"

	var have []string
	for _, in := range []struct{ file, what string }{
		{bundle.OffCPUFile, "off-CPU"}, {bundle.FSStreamFile, "filesystem"}, {bundle.RequestsFile, "latency"},
	} {
		if exists(w.Path(in.file)) {
			have = append(have, in.what)
		}
	}
	data := "no other data"
	if len(have) > 0 {
		data = joinAnd(have) + " data"
	}
	span := time.Duration(end - meta.Start).Round(time.Millisecond)
	headline := "recovered an unfinished capture (killed?): " + recPart
	if rec.Recording != "" {
		headline += fmt.Sprintf("; merged it with %s, collected until the kill (%v into the capture)", data, span)
	} else {
		headline += fmt.Sprintf("; merged %s only (%v of the capture, until the kill)", data, span)
	}
	rec.Warnings = append([]string{headline}, notes...)
	meta.Warnings = append(meta.Warnings, rec.Warnings...)
	for _, wmsg := range rec.Warnings {
		fmt.Fprintln(progress, "warning:", wmsg)
	}
	if err := w.Finish(meta); err != nil {
		return nil, err
	}
	return rec, nil
}

// recoverRecording collects the recording into the bundle and says, for
// the headline, where from or why there is none.
func recoverRecording(w *bundle.Writer, meta *bundle.Meta, rec *Recovery, progress io.Writer) (string, error) {
	dst := w.Path(bundle.RecordingFile)
	if st, err := os.Stat(dst); err == nil && st.Size() > 0 && meta.Profiler != nil {
		// Killed after the profiler's recording had been collected.
		rec.Recording = dst
		meta.Profiler.File = bundle.RecordingFile
		return "the JFR recording had been collected", nil
	}
	p := meta.Profiler
	if p == nil || p.Remote == "" {
		meta.Profiler = nil
		return "the profiler had not started, so there is no JFR recording", nil
	}
	src, whole := waitRecording(meta, progress)
	if src == "" {
		why := fmt.Sprintf("no JFR recording found: the JVM (pid %d) wrote it at %s in its own mount namespace, which is gone", meta.Target.PID, p.Remote)
		if where := recordingPaths(meta); len(where) > 0 {
			why = "no JFR recording found at " + strings.Join(where, " or ")
		}
		meta.Profiler = nil
		return why, nil
	}
	err := writeFile(dst, func(out io.Writer) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("collecting the recording %s: %w", src, err)
	}
	rec.Recording = src
	p.File = bundle.RecordingFile
	what := "collected the JFR recording from " + src
	if whole {
		// It is in the bundle now: nothing of lockscope stays in the JVM.
		os.Remove(src)
	} else {
		what += " (incomplete: its last chunk is cut, so the end of it is missing; the JVM's copy is left in place)"
	}
	return what, nil
}

// recordingPaths are the host paths where the JVM's recording can be now:
// through the JVM's root while it runs, and the path itself when the JVM
// shares lockscope's mount namespace.
func recordingPaths(meta *bundle.Meta) []string {
	p := meta.Profiler
	var out []string
	if sameBoot(meta) && processAlive(meta.Target.PID) {
		out = append(out, fmt.Sprintf("/proc/%d/root%s", meta.Target.PID, p.Remote))
	}
	if p.RemoteOnHost {
		out = append(out, p.Remote)
	}
	return out
}

// waitRecording returns the JVM's recording once the JVM has finished
// writing it: the profiler is past its deadline (or the JVM is gone) and
// the file is whole chunks whose size held still for a poll. While the JVM
// runs and the deadline has not passed it waits, saying so once. It
// returns "" when there is no recording, and whether the one returned is
// whole.
func waitRecording(meta *bundle.Meta, progress io.Writer) (path string, whole bool) {
	p := meta.Profiler
	var prev string
	var prevSize int64
	said := false
	for {
		alive := sameBoot(meta) && processAlive(meta.Target.PID)
		now := clock.Now()
		writing := alive && now < p.Deadline+int64(recordingSettle)
		src, size := "", int64(0)
		for _, c := range recordingPaths(meta) {
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
				src, size = c, st.Size()
				break
			}
		}
		if src != "" {
			stopped := !alive || now >= p.Deadline
			if !writing {
				return src, wholeRecording(src)
			}
			if stopped && src == prev && size == prevSize && wholeRecording(src) {
				return src, true
			}
		} else if !writing {
			return "", false
		}
		prev, prevSize = src, size
		if !said {
			said = true
			until := clock.Single(meta.Clock.Start).Time(p.Deadline)
			fmt.Fprintf(progress, "the killed capture's profiler runs in the JVM (pid %d) until %s (in %v): waiting for it to write its recording %s (Ctrl-C leaves the bundle as it was)\n",
				meta.Target.PID, until.Format(time.TimeOnly), time.Duration(max(p.Deadline-now, 0)).Round(time.Second), p.Remote)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// wholeRecording reports whether a recording is a sequence of complete
// chunks: one being written has a last chunk whose header is still
// provisional (async-profiler) or whose bytes are not all there (the JDK
// copying its chunks out).
func wholeRecording(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	hdr := make([]byte, 68) // a chunk header, format versions 1 and 2
	var off int64
	for off < st.Size() {
		if _, err := f.ReadAt(hdr, off); err != nil {
			return false
		}
		h, err := jfr.ParseHeader(hdr)
		if err != nil {
			return false
		}
		off += h.Size
	}
	return off == st.Size() && off > 0
}

// recoverEnd is the time of the last data the capture collected: the end
// of the last off-CPU interval, filesystem operation or journal event, or
// live request. It also recounts the requests for the meta.
func recoverEnd(w *bundle.Writer, meta *bundle.Meta) (int64, error) {
	var end int64
	if p := w.Path(bundle.OffCPUFile); exists(p) {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		err = bundle.ReadOffCPU(f, func(iv *bundle.Interval) error {
			end = max(end, int64(iv.End))
			return nil
		})
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	if p := w.Path(bundle.FSStreamFile); exists(p) {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		d, err := bundle.ReadFS(f)
		f.Close()
		if err != nil {
			return 0, err
		}
		for _, op := range d.Ops {
			end = max(end, int64(op.End))
		}
		for _, j := range d.Journal {
			end = max(end, int64(j.End))
		}
	}
	if p := w.Path(bundle.RequestsFile); exists(p) && meta.Latency != nil {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		metric, _ := latency.ParseMetric(meta.Latency.Kind)
		live := !isFileSource(meta) // a file's requests are not bounded by the kill
		offset := meta.Clock.Start.Offset()
		meta.Latency.Requests, meta.Latency.OverSLO = 0, 0
		err = latency.ReadRequestsJSONL(f, func(r *latency.Request) error {
			if r.APIKey != latency.APIProduce {
				return nil
			}
			meta.Latency.Requests++
			if r.Measured() && r.Latency(metric) > meta.Latency.SLO {
				meta.Latency.OverSLO++
			}
			if live {
				end = max(end, max(r.ResponseEnd, r.RequestEnd)-offset)
			}
			return nil
		})
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("reading requests: %w", err)
		}
	}
	return end, nil
}

// recoverLatencyFile reads the capture's latency file into requests.jsonl.
func recoverLatencyFile(w *bundle.Writer, meta *bundle.Meta) error {
	kind, path, _ := parseLatency(meta.Latency.Source)
	return writeFile(w.Path(bundle.RequestsFile), func(out io.Writer) error {
		jw := latency.NewJSONLWriter(out)
		var werr error
		err := readLatencyFile(kind, path, meta.Latency.BrokerPorts, func(r *latency.Request) {
			if r.APIKey == latency.APIProduce && werr == nil {
				werr = jw.Write(r)
			}
		})
		return errors.Join(err, werr, jw.Flush())
	})
}

// isFileSource reports whether the capture's latency came from a file.
func isFileSource(meta *bundle.Meta) bool {
	if meta.Latency == nil {
		return false
	}
	kind, _, err := parseLatency(meta.Latency.Source)
	return err == nil && kind != "kafka" && kind != "none"
}

func profilerStarted(meta *bundle.Meta) int64 {
	if meta.Profiler == nil {
		return 0
	}
	return meta.Profiler.Started
}

// sameBoot reports whether the bundle was captured in this boot of this
// host, so that its CLOCK_MONOTONIC times and pid mean something now.
func sameBoot(meta *bundle.Meta) bool {
	return meta.BootID != "" && meta.BootID == bootID()
}

func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH
}

// joinAnd joins words as "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
