package latency

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Lines in the forms Kafka writes: the JSON of Kafka ≥ 2.8 (KIP-673) and
// the older RequestHeader(...) text, as published in Kafka's KIP-673 page
// and Confluent's security documentation, with log4j's "[%d] %p %m (%c)".
const (
	jsonLine    = `[2025-01-02 10:00:00,123] DEBUG Completed request:{"isForwarded":false,"requestHeader":{"requestApiKey":0,"requestApiVersion":9,"correlationId":283,"clientId":"cagri-producer","requestApiKeyName":"PRODUCE"},"request":{"transactionalId":null,"acks":-1,"timeoutMs":3000,"topicData":[{"name":"orders","partitionData":[{"index":8,"recordsSizeInBytes":115}]}]},"response":{"responses":[{"name":"orders","partitionResponses":[{"index":8,"errorCode":0,"baseOffset":72}]}],"throttleTimeMs":0},"connection":"172.80.0.11:9092-172.80.0.43:52486-0-4","totalTimeMs":74.67,"requestQueueTimeMs":0.118,"localTimeMs":72.304,"remoteTimeMs":2.109,"throttleTimeMs":0,"responseQueueTimeMs":0.031,"sendTimeMs":0.106,"securityProtocol":"PLAINTEXT","principal":"User:ANONYMOUS","listener":"PLAINTEXT","clientInformation":{"softwareName":"apache-kafka-java","softwareVersion":"3.7.0"}} (kafka.request.logger)`
	textLine    = `[2019-06-01 12:00:00,500] DEBUG Completed request:RequestHeader(apiKey=PRODUCE, apiVersion=8, clientId=producer-1, correlationId=6) -- {acks=1,timeout=30000,partitionSizes=[customer-orders-0=15514,customer-orders-3=20]},response:{responses=[{topic=customer-orders,partition_responses=[{partition=0,error_code=0,base_offset=13}]}],throttle_time_ms=0} from connection 127.0.0.1:9094-127.0.0.1:61040-0;totalTime:2.42,requestQueueTime:0.112,localTime:2.15,remoteTime:0.0,throttleTime:0,responseQueueTime:0.04,sendTime:0.118,securityProtocol:PLAINTEXT,principal:User:ANONYMOUS,listener:PLAINTEXT,clientInformation:ClientInformation(softwareName=apache-kafka-java, softwareVersion=2.5.0) (kafka.request.logger)`
	listOffsets = `[2020-09-09 18:37:12,886] DEBUG Completed request:RequestHeader(apiKey=LIST_OFFSETS, apiVersion=5, clientId=consumer-group-1, correlationId=8799) -- {replicaId=-1,isolationLevel=0},response={throttleTimeMs=0} from connection 127.0.0.1:62610-127.0.0.1:62622-3;totalTime:0.085,requestQueueTime:0.013,localTime:0.033,remoteTime:0.011,throttleTime:0,responseQueueTime:0.011,sendTime:0.015,sendIoTime:0.01,securityProtocol:PLAINTEXT,principal:User:ANONYMOUS,listener:PLAINTEXT (kafka.request.logger)`
)

func TestRequestLogForms(t *testing.T) {
	log := strings.Join([]string{
		"[2025-01-02 09:59:59,000] INFO some other logger line (kafka.server.KafkaServer)",
		jsonLine,
		textLine,
		listOffsets,
		"\tat java.base/java.lang.Thread.run(Thread.java:833)",
		`[2025-01-02 10:00:01,000] DEBUG Completed request:{"requestHeader":{"requestApiKey":0`, // cut mid-write
	}, "\n")
	var got []*Request
	st, err := ReadRequestLog(strings.NewReader(log), time.UTC, func(r *Request) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 6 || st.Requests != 3 || st.Malformed != 1 || st.FirstMalformed != 6 {
		t.Errorf("stats %+v, want 6 lines, 3 requests, 1 malformed at line 6", st)
	}
	t1 := time.Date(2025, 1, 2, 10, 0, 0, 123e6, time.UTC).UnixNano()
	t2 := time.Date(2019, 6, 1, 12, 0, 0, 500e6, time.UTC).UnixNano()
	want := []*Request{{
		Client: netip.MustParseAddrPort("172.80.0.43:52486"), Server: netip.MustParseAddrPort("172.80.0.11:9092"),
		CorrelationID: 283, APIKey: 0, APIVersion: 9, ClientID: "cagri-producer", Acks: -1,
		Partitions: []Partition{{Topic: "orders", Partition: 8, Records: -1, Bytes: 115}},
		RequestEnd: t1 - 74_670_000, ResponseEnd: t1,
		Wire: 74670 * time.Microsecond, Service: 74670 * time.Microsecond, Status: Answered,
		Breakdown: &Breakdown{RequestQueue: 118 * time.Microsecond, Local: 72304 * time.Microsecond, Remote: 2109 * time.Microsecond, ResponseQueue: 31 * time.Microsecond, Send: 106 * time.Microsecond},
	}, {
		Client: netip.MustParseAddrPort("127.0.0.1:61040"), Server: netip.MustParseAddrPort("127.0.0.1:9094"),
		CorrelationID: 6, APIKey: 0, APIVersion: 8, ClientID: "producer-1", Acks: 1,
		Partitions: []Partition{{Topic: "customer-orders", Partition: 0, Records: -1, Bytes: 15514}, {Topic: "customer-orders", Partition: 3, Records: -1, Bytes: 20}},
		RequestEnd: t2 - 2_420_000, ResponseEnd: t2,
		Wire: 2420 * time.Microsecond, Service: 2420 * time.Microsecond, Status: Answered,
		Breakdown: &Breakdown{RequestQueue: 112 * time.Microsecond, Local: 2150 * time.Microsecond, ResponseQueue: 40 * time.Microsecond, Send: 118 * time.Microsecond},
	}}
	if diff := cmp.Diff(want, got[:2], cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got[2].APIKey != 2 || got[2].Wire != 85*time.Microsecond {
		t.Errorf("LIST_OFFSETS: key %d wire %v, want 2 and 85µs", got[2].APIKey, got[2].Wire)
	}
	// Local time of the broker.
	tokyo := time.FixedZone("JST", 9*3600)
	r, err := ParseRequestLogLine([]byte(textLine), tokyo)
	if err != nil || r.ResponseEnd != t2-9*3600e9 {
		t.Errorf("in JST: %v, %v; want %d", r.ResponseEnd, err, t2-9*3600e9)
	}
}

func TestRequestLogErrors(t *testing.T) {
	for _, line := range []string{
		`DEBUG Completed request:{"requestHeader":{"requestApiKey":0},"totalTimeMs":1}`,           // no time stamp
		`[2025-01-02 10:00:00,123] DEBUG Completed request:{"requestHeader":{"requestApiKey":0}}`, // no total
		`[2025-01-02 10:00:00,123] DEBUG Completed request:RequestHeader(apiKey=NOPE, apiVersion=1, clientId=a, correlationId=1) -- {} from connection a-b-0;totalTime:1`,
		`[2025-01-02 10:00:00,123] DEBUG Completed request:RequestHeader(apiKey=PRODUCE, apiVersion=1, clientId=a, correlationId=1) -- {}`,
	} {
		if r, err := ParseRequestLogLine([]byte(line), time.UTC); err == nil {
			t.Errorf("%q: parsed as %+v, want an error", line, r)
		}
	}
}

// FuzzRequestLogLine: any line parses or errs, never panics, and a parsed
// request is answered with a non-negative latency ending at the log time.
func FuzzRequestLogLine(f *testing.F) {
	for _, l := range []string{jsonLine, textLine, listOffsets, "", "Completed request:", "[2025-01-02 10:00:00,123] Completed request:{}"} {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRequestLogLine(line, time.UTC)
		if err != nil || r == nil {
			return
		}
		if r.Status != Answered || r.ResponseEnd-r.RequestEnd != int64(r.Wire) {
			t.Fatalf("inconsistent request %+v", r)
		}
		var buf bytes.Buffer
		w := NewJSONLWriter(&buf)
		if err := w.Write(r); err != nil {
			// NaN or infinite times cannot be written; they must not parse.
			t.Fatalf("parsed request does not serialize: %v", err)
		}
	})
}
