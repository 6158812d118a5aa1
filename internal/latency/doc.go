// Package latency is lockscope's currency for per-request broker latency:
// the Request record that every latency source produces, and the WindowSet
// of merged intervals where latency exceeded the SLO, which the merge step
// uses to split profiles into slow and baseline.
//
// Sources:
//   - packets: subpackages kafka (the streaming Kafka framer) and sniff
//     (pcap/pcapng files, live AF_PACKET capture, TCP reassembly);
//   - Kafka's request log (ReadRequestLog), JSON (Kafka ≥ 2.8) or the older
//     text form, with the broker's own time breakdown;
//   - generic CSV/JSONL files of start time and duration (ReadGeneric);
//   - window lists, aggregated or plain (ReadWindowList), which give windows
//     directly rather than requests;
//   - lockscope's own requests JSONL (JSONLWriter, ReadRequestsJSONL).
//
// Wire latency is response done − request done (tshark's definition);
// service time is response done − max(request done, previous response done
// on the connection), which leaves out the wait behind a slow predecessor.
// A Builder turns requests into a WindowSet by either metric.
//
// Clocks: times in a Request are wall-clock (CLOCK_REALTIME) nanoseconds
// since the Unix epoch, as packets and logs are stamped. They are converted
// to the bundle's CLOCK_MONOTONIC once, when a WindowSet goes into a bundle
// (WindowSet.ToMonotonic with the capture's clock.Mapping, the pairs
// sampled at its start and end); a WindowSet records which clock it is in,
// and its JSONL and CSV forms say so in their header.
//
// Readers stream: they call a function per record and keep nothing after
// it returns, so memory stays bounded whatever the file size. A *Request
// handed to such a function belongs to the callee.
package latency
