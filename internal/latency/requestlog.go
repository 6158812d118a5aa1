package latency

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's request log (logger kafka.request.logger at DEBUG) has a line per
// completed request. Since Kafka 2.8 (KIP-673) it is JSON:
//
//	[2025-01-02 10:00:00,123] DEBUG Completed request:{"isForwarded":false,"requestHeader":{"requestApiKey":0,...,"requestApiKeyName":"PRODUCE"},"request":{...},"response":{...},"connection":"10.0.0.1:9092-10.0.0.2:51000-0","totalTimeMs":4.67,"requestQueueTimeMs":0.118,...} (kafka.request.logger)
//
// and before that:
//
//	[2019-01-02 10:00:00,123] DEBUG Completed request:RequestHeader(apiKey=PRODUCE, apiVersion=8, clientId=producer-1, correlationId=6) -- {acks=-1,timeout=30000,partitionSizes=[orders-0=15514]},response:{...} from connection 127.0.0.1:9094-127.0.0.1:61040-0;totalTime:2.42,requestQueueTime:0.112,localTime:2.15,remoteTime:0.0,throttleTime:0,responseQueueTime:0.04,sendTime:0.118,... (kafka.request.logger)
//
// The line is written when the response has been sent, so the log time is
// the response's end and the request's end is the log time − totalTime. The
// log time has millisecond resolution (log4j's %d); totalTime has
// microseconds, so latencies are exact to the microsecond and window edges
// to the millisecond.

// LogStats counts what ReadRequestLog met.
type LogStats struct {
	Lines     int // lines read
	Requests  int // completed-request lines parsed
	Malformed int // completed-request lines that did not parse
	// FirstMalformed is the line number and error of the first of those.
	FirstMalformed    int
	FirstMalformedErr error
}

// ReadRequestLog reads a Kafka request log, calling fn for every completed
// request. Other lines (other loggers, a multi-line stack trace) are
// skipped; completed-request lines that do not parse are counted, not
// fatal, since a log being written may end in a partial line. loc is the
// time zone the broker logged in (log4j writes local time without a zone).
func ReadRequestLog(r io.Reader, loc *time.Location, fn func(*Request) error) (LogStats, error) {
	var st LogStats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), 64<<20)
	for sc.Scan() {
		st.Lines++
		req, err := ParseRequestLogLine(sc.Bytes(), loc)
		if err != nil {
			st.Malformed++
			if st.FirstMalformed == 0 {
				st.FirstMalformed, st.FirstMalformedErr = st.Lines, err
			}
			continue
		}
		if req == nil {
			continue
		}
		st.Requests++
		if err := fn(req); err != nil {
			return st, err
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read request log line %d: %w", st.Lines+1, err)
	}
	return st, nil
}

var completed = []byte("Completed request:")

// ParseRequestLogLine parses one line of a Kafka request log. It returns
// nil, nil for lines that are not completed requests.
func ParseRequestLogLine(line []byte, loc *time.Location) (*Request, error) {
	i := bytes.Index(line, completed)
	if i < 0 {
		return nil, nil
	}
	logged, err := logTime(line[:i], loc)
	if err != nil {
		return nil, err
	}
	rest := bytes.TrimLeft(line[i+len(completed):], " ")
	var r *Request
	if len(rest) > 0 && rest[0] == '{' {
		r, err = parseJSONLog(rest)
	} else {
		r, err = parseTextLog(rest)
	}
	if err != nil {
		return nil, err
	}
	r.ResponseEnd = logged
	r.RequestEnd = logged - int64(r.Wire)
	r.Service = r.Wire
	r.Status = Answered
	return r, nil
}

var logLayouts = []string{
	"2006-01-02 15:04:05,000",
	"2006-01-02 15:04:05.000",
	"2006-01-02T15:04:05,000",
	"2006-01-02T15:04:05.000",
	"2006-01-02T15:04:05.000Z07:00",
	"2006-01-02T15:04:05,000Z07:00",
}

// logTime finds the "[time]" that starts a log4j line.
func logTime(prefix []byte, loc *time.Location) (int64, error) {
	s := string(bytes.TrimSpace(prefix))
	if open := strings.IndexByte(s, '['); open >= 0 {
		if end := strings.IndexByte(s[open:], ']'); end > 0 {
			s = s[open+1 : open+end]
		}
	}
	for _, l := range logLayouts {
		if len(s) >= len(l)-6 {
			if t, err := time.ParseInLocation(l, s, loc); err == nil {
				return t.UnixNano(), nil
			}
		}
	}
	return 0, fmt.Errorf("parse request log time: no [yyyy-MM-dd HH:mm:ss,SSS] time stamp before %q", completed)
}

func millis(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }

type jsonLog struct {
	RequestHeader struct {
		APIKey     *int16 `json:"requestApiKey"`
		APIVersion int16  `json:"requestApiVersion"`
		Corr       int32  `json:"correlationId"`
		ClientID   string `json:"clientId"`
		APIKeyName string `json:"requestApiKeyName"`
	} `json:"requestHeader"`
	Request struct {
		TransactionalID *string `json:"transactionalId"`
		Acks            *int16  `json:"acks"`
		TopicData       []struct {
			Name          string `json:"name"`
			TopicID       string `json:"topicId"`
			PartitionData []struct {
				Index int32 `json:"index"`
				Size  *int  `json:"recordsSizeInBytes"`
			} `json:"partitionData"`
		} `json:"topicData"`
	} `json:"request"`
	Connection    string   `json:"connection"`
	Total         *float64 `json:"totalTimeMs"`
	RequestQueue  float64  `json:"requestQueueTimeMs"`
	Local         float64  `json:"localTimeMs"`
	Remote        float64  `json:"remoteTimeMs"`
	Throttle      float64  `json:"throttleTimeMs"`
	ResponseQueue float64  `json:"responseQueueTimeMs"`
	Send          float64  `json:"sendTimeMs"`
}

func parseJSONLog(b []byte) (*Request, error) {
	var j jsonLog
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&j); err != nil {
		return nil, fmt.Errorf("parse request log JSON: %w", err)
	}
	h := &j.RequestHeader
	if j.Total == nil {
		return nil, errors.New("parse request log JSON: no totalTimeMs")
	}
	key := int16(-1)
	switch {
	case h.APIKey != nil:
		key = *h.APIKey
	case h.APIKeyName != "":
		k, ok := apiKeyByName(h.APIKeyName)
		if !ok {
			return nil, fmt.Errorf("parse request log JSON: unknown api %q", h.APIKeyName)
		}
		key = k
	default:
		return nil, errors.New("parse request log JSON: no requestApiKey")
	}
	r := &Request{APIKey: key, APIVersion: h.APIVersion, CorrelationID: h.Corr, ClientID: h.ClientID, Wire: millis(*j.Total)}
	r.Breakdown = &Breakdown{
		RequestQueue: millis(j.RequestQueue), Local: millis(j.Local), Remote: millis(j.Remote),
		Throttle: millis(j.Throttle), ResponseQueue: millis(j.ResponseQueue), Send: millis(j.Send),
	}
	r.Server, r.Client = parseConnection(j.Connection)
	if key == APIProduce {
		if j.Request.Acks != nil {
			r.Acks = *j.Request.Acks
		}
		if j.Request.TransactionalID != nil {
			r.TransactionalID = *j.Request.TransactionalID
		}
		for _, td := range j.Request.TopicData {
			topic := td.Name
			if topic == "" {
				topic = td.TopicID
			}
			for _, pd := range td.PartitionData {
				p := Partition{Topic: topic, Partition: pd.Index, Records: -1}
				if pd.Size != nil {
					p.Bytes = *pd.Size
				}
				r.Partitions = append(r.Partitions, p)
			}
		}
	}
	return r, nil
}

var (
	textHeader = regexp.MustCompile(`^RequestHeader\(apiKey=(\w+), apiVersion=(-?\d+), clientId=(.*?), correlationId=(-?\d+)`)
	textAcks   = regexp.MustCompile(`[{,]acks=(-?\d+)`)
	textSizes  = regexp.MustCompile(`partitionSizes=\[([^\]]*)\]`)
	textConn   = regexp.MustCompile(` from connection (\S+?);(.*)$`)
)

func parseTextLog(b []byte) (*Request, error) {
	s := string(b)
	m := textHeader.FindStringSubmatch(s)
	if m == nil {
		return nil, errors.New("parse request log: no RequestHeader(apiKey=..., apiVersion=..., clientId=..., correlationId=...)")
	}
	key, ok := apiKeyByName(m[1])
	if !ok {
		return nil, fmt.Errorf("parse request log: unknown api %q", m[1])
	}
	ver, _ := strconv.Atoi(m[2])
	corr, _ := strconv.Atoi(m[4])
	r := &Request{APIKey: key, APIVersion: int16(ver), ClientID: m[3], CorrelationID: int32(corr)}
	c := textConn.FindStringSubmatch(s)
	if c == nil {
		return nil, errors.New("parse request log: no \"from connection ...;totalTime:...\"")
	}
	r.Server, r.Client = parseConnection(c[1])
	times := map[string]time.Duration{}
	for _, kv := range strings.Split(c[2], ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			times[strings.TrimSpace(k)] = millis(f)
		}
	}
	total, ok := times["totalTime"]
	if !ok {
		return nil, errors.New("parse request log: no totalTime")
	}
	r.Wire = total
	r.Breakdown = &Breakdown{
		RequestQueue: times["requestQueueTime"], Local: times["localTime"], Remote: times["remoteTime"],
		Throttle: times["throttleTime"], ResponseQueue: times["responseQueueTime"], Send: times["sendTime"],
	}
	if key == APIProduce {
		if a := textAcks.FindStringSubmatch(s); a != nil {
			acks, _ := strconv.Atoi(a[1])
			r.Acks = int16(acks)
		}
		if ps := textSizes.FindStringSubmatch(s); ps != nil {
			for _, tp := range strings.Split(ps[1], ",") {
				tp = strings.TrimSpace(tp)
				name, size, ok := strings.Cut(tp, "=")
				dash := strings.LastIndexByte(name, '-')
				if !ok || dash < 0 {
					continue
				}
				part, err1 := strconv.Atoi(name[dash+1:])
				n, err2 := strconv.Atoi(size)
				if err1 != nil || err2 != nil {
					continue
				}
				r.Partitions = append(r.Partitions, Partition{Topic: name[:dash], Partition: int32(part), Records: -1, Bytes: n})
			}
		}
	}
	return r, nil
}

// parseConnection splits Kafka's connection id, local-remote-processor[-n],
// into the broker's and the client's address.
func parseConnection(id string) (server, client netip.AddrPort) {
	parts := strings.Split(id, "-")
	if len(parts) < 2 {
		return
	}
	server, _ = parseHostPort(parts[0])
	client, _ = parseHostPort(parts[1])
	return
}

func parseHostPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	// Kafka writes IPv6 without brackets.
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, errors.New("no port")
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// apiKeyNames maps Kafka's ApiKeys enum names (PRODUCE, LIST_OFFSETS) to
// keys, through franz-go's table of request names (Produce, ListOffsets):
// both are compared upper-cased without underscores, which also matches
// acronyms (DESCRIBE_ACLS and DescribeACLs).
var apiKeyNames = func() map[string]int16 {
	m := map[string]int16{}
	for k := int16(0); k < 200; k++ {
		name := kmsg.NameForKey(k)
		if name == "" || name == "Unknown" {
			continue
		}
		m[strings.ToUpper(name)] = k
	}
	return m
}()

func apiKeyByName(name string) (int16, bool) {
	k, ok := apiKeyNames[strings.ReplaceAll(strings.ToUpper(name), "_", "")]
	return k, ok
}
