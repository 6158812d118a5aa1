// Package latency is lockscope's currency for per-request broker latency:
// the Request record that every latency source (the Kafka sniffer in
// subpackages kafka and sniff, Kafka's request log, generic CSV/JSONL files)
// produces, and the WindowSet of merged intervals where latency exceeded the
// SLO, which the merge step uses to split profiles into slow and baseline.
//
// Times in a Request are wall-clock (CLOCK_REALTIME) nanoseconds since the
// Unix epoch, because packets and logs are stamped that way. They are
// converted to the bundle's CLOCK_MONOTONIC once, when a WindowSet is handed
// to a bundle, with a ClockPair sampled on the capturing machine
// (WindowSet.ToMonotonic); a WindowSet says which clock its times are in.
//
// Readers in this package stream: they call a function per record and keep
// nothing after it returns, so memory stays bounded whatever the file size.
// A *Request handed to such a function belongs to the callee.
package latency
