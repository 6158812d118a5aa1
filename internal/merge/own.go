package merge

import (
	"strings"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/pprofbuild"
)

// profilerSample reports whether a sample is the profiler at work rather
// than the broker: a thread of the JDK Flight Recorder ("JFR Recorder
// Thread", "JFR Periodic Tasks", ...) or of async-profiler, or a stack in
// their Java code (the attach listener starting or dumping a recording runs
// jdk.jfr.internal.PlatformRecorder). Their time is real but lockscope's
// own doing: it is left out of what the summary ranks, and counted apart.
func profilerSample(s *profile.Sample) bool {
	if t := s.Label["thread"]; len(t) > 0 {
		if n := t[0]; strings.HasPrefix(n, "JFR ") || strings.HasPrefix(n, "Async-profiler") || strings.HasPrefix(n, "async-profiler") {
			return true
		}
	}
	for _, l := range s.Location {
		fn := l.Line[0].Function
		if pprofbuild.KindOf(fn) == pprofbuild.KindJava && profilerFrame(fn.Name) {
			return true
		}
	}
	return false
}

func profilerFrame(name string) bool {
	return strings.HasPrefix(name, "jdk.jfr.") || strings.HasPrefix(name, "one.profiler.")
}

// profilerTime sums a sample type over the profiler's own samples.
func profilerTime(p *profile.Profile, typ string) int64 {
	i := typeIndex(p, typ)
	if i < 0 {
		return 0
	}
	var t int64
	for _, s := range p.Sample {
		if s.Value[i] != 0 && profilerSample(s) {
			t += s.Value[i]
		}
	}
	return t
}
