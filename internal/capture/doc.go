// Package capture orchestrates lockscope's main job: record a broker JVM's
// threads (profiler, off-CPU collector, latency source) into a bundle, and
// merge a bundle into its SLO-filtered profiles, folded stacks and summary.
//
// MergeBundle redoes the merge of an existing bundle offline, with the SLO,
// padding and latency kind given, from the bundle's raw inputs alone.
package capture
