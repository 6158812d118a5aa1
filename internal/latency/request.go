package latency

import (
	"fmt"
	"net/netip"
	"time"
)

// Status says whether a request's latency could be measured.
type Status uint8

const (
	// Answered: the response was seen; Wire and Service are valid.
	Answered Status = iota
	// NoResponse: a produce request with acks=0, which Kafka never answers.
	// Its latency is unmeasurable by design, not pending.
	NoResponse
	// Unanswered: the connection closed, was reset or the capture ended
	// before the response was seen.
	Unanswered
	// LostResponse: a later response on the same connection was seen first;
	// since a broker answers a connection in order, this response was lost
	// from the capture (dropped packets or a segment never reassembled).
	LostResponse
)

var statusNames = [...]string{"answered", "no_response", "unanswered", "lost_response"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus is the inverse of Status.String.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("parse status %q: want one of %v", s, statusNames[:])
}

// APIProduce is the Kafka api key of Produce requests.
const APIProduce = 0

// APIFetch is the Fetch API key.
const APIFetch = 1

// Partition is one topic-partition of a produce request with what it carried.
type Partition struct {
	// Topic is the topic name, or for Produce v13+ (which names topics by
	// id) the topic id as 32 hex digits.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Records counts the records of all batches (or legacy messages); it is
	// -1 when the record set could not be walked (a lost segment).
	Records int `json:"records"`
	// Bytes is the size of the partition's record set on the wire.
	Bytes int `json:"bytes"`
	// BaseOffset is the offset the broker gave the first record, from its
	// response (nil: not known, or an error); the records are then
	// BaseOffset .. BaseOffset+Records-1.
	BaseOffset *int64 `json:"base_offset,omitempty"`
}

// ReplicaFetch is a Fetch request from a follower (a replica id set): the
// offsets it asks for are what it has, so a fetch past a produce
// request's records says the follower has them.
type ReplicaFetch struct {
	Replica int32         `json:"replica"`
	Offsets []FetchOffset `json:"offsets"`
}

// FetchOffset is a partition's fetch offset in a Fetch request.
type FetchOffset struct {
	// Topic is the name, or for Fetch v13+ the topic id until a Metadata
	// response names it.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Breakdown is the broker's own split of a request's time, as Kafka's
// request log gives it. Only the request-log source fills it.
type Breakdown struct {
	RequestQueue  time.Duration `json:"request_queue_ns"`
	Local         time.Duration `json:"local_ns"`
	Remote        time.Duration `json:"remote_ns"`
	Throttle      time.Duration `json:"throttle_ns"`
	ResponseQueue time.Duration `json:"response_queue_ns"`
	Send          time.Duration `json:"send_ns"`
}

// PhaseNames name a Breakdown's phases, in the order of Phases.
var PhaseNames = []string{"request queue", "local", "remote", "throttle", "response queue", "send"}

// Phases returns the breakdown's phases in the order of PhaseNames.
func (b *Breakdown) Phases() [6]time.Duration {
	return [6]time.Duration{b.RequestQueue, b.Local, b.Remote, b.Throttle, b.ResponseQueue, b.Send}
}

// Request is one request and its response, from whatever source.
//
// Wire latency is ResponseEnd − RequestEnd, tshark's "time since request".
// Service time is ResponseEnd − max(RequestEnd, the previous response's end on
// the same connection): a broker answers a connection in order, so a request
// pipelined behind a slow one waits without being slow itself; service time
// leaves that head-of-line wait out.
type Request struct {
	// Client and Server are the connection's endpoints; zero for sources
	// that do not know them.
	Client netip.AddrPort
	Server netip.AddrPort

	CorrelationID int32
	APIKey        int16
	APIVersion    int16
	ClientID      string

	// Produce requests only.
	Acks            int16
	TransactionalID string
	Partitions      []Partition

	// Wall-clock ns since the Unix epoch of the first and last byte of the
	// request and of the response; zero when unknown (a log source knows
	// only RequestEnd and ResponseEnd).
	RequestStart, RequestEnd   int64
	ResponseStart, ResponseEnd int64

	// Wire and Service are valid when Status is Answered.
	Wire, Service time.Duration
	Status        Status

	// Damaged is set when part of the request or response was lost (a gap
	// in the TCP stream); its timing holds but its contents may be partial.
	Damaged bool

	// Key is a free-form label from generic sources (e.g. a topic-partition
	// or a client-side request name).
	Key string
	// Breakdown is set by the request-log source.
	Breakdown *Breakdown
	// Replica is set for a follower's Fetch request, by the sniffer.
	Replica *ReplicaFetch
}

// Measured reports whether the request has a latency.
func (r *Request) Measured() bool { return r.Status == Answered }

// Latency returns the wire or service latency.
func (r *Request) Latency(m Metric) time.Duration {
	if m == Service {
		return r.Service
	}
	return r.Wire
}

// SlowSince returns when the request started counting against the metric:
// the request's end for wire latency, the later of it and the previous
// response for service time.
func (r *Request) SlowSince(m Metric) int64 {
	return r.ResponseEnd - int64(r.Latency(m))
}

// Metric selects which latency of a request is compared to the SLO.
type Metric uint8

const (
	// Wire latency: response done − request done.
	Wire Metric = iota
	// Service time: response done − max(request done, previous response done).
	Service
)

func (m Metric) String() string {
	if m == Service {
		return "service"
	}
	return "wire"
}

// ParseMetric is the inverse of Metric.String.
func ParseMetric(s string) (Metric, error) {
	switch s {
	case "wire":
		return Wire, nil
	case "service":
		return Service, nil
	}
	return 0, fmt.Errorf("parse metric %q: want wire or service", s)
}

// TopicPartition formats a partition as topic-partition, Kafka's usual
// spelling.
func (p Partition) String() string { return fmt.Sprintf("%s-%d", p.Topic, p.Partition) }
