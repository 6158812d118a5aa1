package latency

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	fastjson "github.com/goccy/go-json"
	"io"
	"net/netip"
	"time"
)

// jsonRequest is the JSONL form of a Request: times as integer nanoseconds
// (exact, sortable) next to latencies in microseconds for people and jq.
type jsonRequest struct {
	Client          string        `json:"client,omitempty"`
	Server          string        `json:"server,omitempty"`
	CorrelationID   int32         `json:"correlation_id"`
	APIKey          int16         `json:"api_key"`
	APIVersion      int16         `json:"api_version"`
	ClientID        string        `json:"client_id,omitempty"`
	Acks            *int16        `json:"acks,omitempty"`
	TransactionalID string        `json:"transactional_id,omitempty"`
	Partitions      []Partition   `json:"partitions,omitempty"`
	RequestStart    int64         `json:"request_start_ns,omitempty"`
	RequestEnd      int64         `json:"request_end_ns"`
	ResponseStart   int64         `json:"response_start_ns,omitempty"`
	ResponseEnd     int64         `json:"response_end_ns,omitempty"`
	WireUS          *float64      `json:"wire_us,omitempty"`
	ServiceUS       *float64      `json:"service_us,omitempty"`
	Status          string        `json:"status"`
	Damaged         bool          `json:"damaged,omitempty"`
	Key             string        `json:"key,omitempty"`
	Breakdown       *Breakdown    `json:"breakdown,omitempty"`
	Replica         *ReplicaFetch `json:"replica,omitempty"`
}

func micros(d time.Duration) *float64 {
	f := float64(d) / 1e3
	return &f
}

// MarshalJSON writes the JSONL form; see WriteJSONL.
func (r *Request) MarshalJSON() ([]byte, error) {
	j := jsonRequest{
		CorrelationID: r.CorrelationID, APIKey: r.APIKey, APIVersion: r.APIVersion,
		ClientID: r.ClientID, TransactionalID: r.TransactionalID, Partitions: r.Partitions,
		RequestStart: r.RequestStart, RequestEnd: r.RequestEnd,
		ResponseStart: r.ResponseStart, ResponseEnd: r.ResponseEnd,
		Status: r.Status.String(), Damaged: r.Damaged, Key: r.Key, Breakdown: r.Breakdown, Replica: r.Replica,
	}
	if r.Client.IsValid() {
		j.Client = r.Client.String()
	}
	if r.Server.IsValid() {
		j.Server = r.Server.String()
	}
	if r.APIKey == APIProduce && r.Client.IsValid() {
		acks := r.Acks
		j.Acks = &acks
	}
	if r.Status == Answered {
		j.WireUS, j.ServiceUS = micros(r.Wire), micros(r.Service)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (r *Request) UnmarshalJSON(b []byte) error {
	var j jsonRequest
	if err := fastjson.Unmarshal(b, &j); err != nil {
		return err
	}
	st, err := ParseStatus(j.Status)
	if err != nil {
		return err
	}
	*r = Request{
		CorrelationID: j.CorrelationID, APIKey: j.APIKey, APIVersion: j.APIVersion,
		ClientID: j.ClientID, TransactionalID: j.TransactionalID, Partitions: j.Partitions,
		RequestStart: j.RequestStart, RequestEnd: j.RequestEnd,
		ResponseStart: j.ResponseStart, ResponseEnd: j.ResponseEnd,
		Status: st, Damaged: j.Damaged, Key: j.Key, Breakdown: j.Breakdown, Replica: j.Replica,
	}
	if j.Client != "" {
		if r.Client, err = netip.ParseAddrPort(j.Client); err != nil {
			return err
		}
	}
	if j.Server != "" {
		if r.Server, err = netip.ParseAddrPort(j.Server); err != nil {
			return err
		}
	}
	if j.Acks != nil {
		r.Acks = *j.Acks
	}
	// Latencies are recomputed from the exact nanosecond times, never from
	// the rounded microseconds, when the times are there.
	if st == Answered {
		switch {
		case j.WireUS == nil:
			return errors.New("answered request without wire_us")
		case r.ResponseEnd != 0 && r.RequestEnd != 0:
			r.Wire = time.Duration(r.ResponseEnd - r.RequestEnd)
		default:
			r.Wire = time.Duration(*j.WireUS * 1e3)
		}
		r.Service = r.Wire
		if j.ServiceUS != nil {
			r.Service = time.Duration(*j.ServiceUS*1e3 + 0.5)
		}
	}
	return nil
}

// JSONLWriter writes requests one JSON object a line.
type JSONLWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewJSONLWriter buffers its output; call Flush at the end.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &JSONLWriter{w: bw, enc: json.NewEncoder(bw)}
}

// Write appends one request.
func (w *JSONLWriter) Write(r *Request) error {
	if err := w.enc.Encode(r); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	return nil
}

// Flush writes out what is buffered.
func (w *JSONLWriter) Flush() error { return w.w.Flush() }

// ReadRequestsJSONL reads what JSONLWriter wrote (lockscope's own requests
// file), calling fn per request.
func ReadRequestsJSONL(r io.Reader, fn func(*Request) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		req := new(Request)
		if err := req.UnmarshalJSON(b); err != nil {
			return fmt.Errorf("read requests line %d: %w", line, err)
		}
		if err := fn(req); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read requests: %w", err)
	}
	return nil
}
