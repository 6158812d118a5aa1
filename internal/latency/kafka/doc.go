// Package kafka is a passive, streaming parser of the Kafka wire protocol:
// fed the two byte streams of a TCP connection to a broker, as timestamped
// chunks, it yields one latency.Request per request with its response times.
//
// It decodes only what latency attribution needs: frame sizes, request
// headers v0–v2 (client_id is never compact), Produce v0–v13 far enough for
// acks, transactional id, topics, partitions and record counts, and the
// correlation id of responses (a response header carries nothing else that
// matters; ApiVersions responses always use header v0, so no response
// header is interpreted past the id). Record data is skipped, never
// buffered: a Conn holds at most one primitive (a string of at most 64 KiB)
// and a bounded queue of outstanding requests, whatever the request sizes.
//
// The parser is written for captures, which lose things: a stream may start
// in the middle (Desync, then resync at the next plausible frame), TCP
// segments may be lost (Gap: a gap inside a frame keeps the framing; one
// across a frame boundary resyncs), responses may be seen before their
// requests (kept briefly as orphans), and acks=0 produce requests are never
// answered (reported as latency.NoResponse at once). TLS connections are
// detected and counted, not parsed.
//
// A Conn is not safe for concurrent use; the emit function it is given is
// called synchronously from Feed, Gap and Close with a fresh *latency.Request
// that the callee owns.
package kafka
