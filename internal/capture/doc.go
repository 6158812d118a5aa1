// Package capture orchestrates lockscope's main job: record a broker JVM's
// threads (profiler, off-CPU collector, latency source) into a bundle, and
// merge a bundle into its SLO-filtered profiles, folded stacks and summary.
//
// MergeBundle redoes the merge of an existing bundle offline, with the SLO,
// padding and latency kind given, from the bundle's raw inputs alone.
//
// A capture killed with SIGKILL leaves a bundle with a provisional
// meta.json (Run writes it when it starts and once the profiler runs) and
// streams written out up to the last second. Recover, which MergeBundle
// calls for such a bundle, finishes it: it collects the recording the
// profiler left in the JVM's /tmp once the JVM has written it, drops the
// lines the kill cut and says in meta.json what is missing. Recovery is
// the one step of merging that looks outside the bundle (the JVM's /tmp,
// whether the JVM still runs, the clock, for the profiler's deadline).
package capture
