package latency

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Generic latency files are what operators already have: a client-side
// log, a load generator's output, a tracing export. Each row is a request's
// start time and duration, with an optional key:
//
//	CSV with a header:  start,duration[,key]
//	CSV without one:    1733572800123456789,4523000[,key] (see headerless)
//	JSONL:              {"start": ..., "duration": ..., "key": ...}
//
// Column (or field) names are matched loosely: start, start_time, time,
// timestamp, ts; duration, latency, elapsed; key, name, topic, partition.
// A unit suffix on the name (_ns, _us, _ms, _s) gives the unit of numeric
// values. Start times may also be RFC 3339 strings; numeric start times
// without a unit are taken by magnitude (seconds, ms, µs or ns since the
// epoch). Durations may also be Go duration strings ("65ms"); numeric
// durations without a unit are milliseconds, the usual unit of latency logs.

// Column roles.
const (
	colNone = iota
	colStart
	colDuration
	colKey
)

type column struct {
	role int
	unit time.Duration // 0: unknown
}

func classify(name string) column {
	n := strings.ToLower(strings.TrimSpace(name))
	var unit time.Duration
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"_ns", time.Nanosecond}, {"_us", time.Microsecond}, {"_ms", time.Millisecond}, {"_s", time.Second}, {"_sec", time.Second}} {
		if strings.HasSuffix(n, u.suffix) {
			n, unit = strings.TrimSuffix(n, u.suffix), u.d
			break
		}
	}
	n = strings.TrimSuffix(strings.TrimSuffix(n, "_epoch"), "_unix")
	switch n {
	case "start", "start_time", "starttime", "time", "timestamp", "ts", "begin", "sent", "send_time":
		return column{colStart, unit}
	case "duration", "latency", "elapsed", "took", "rtt":
		return column{colDuration, unit}
	case "key", "name", "topic", "partition", "topic_partition", "op", "operation":
		return column{colKey, unit}
	}
	return column{colNone, unit}
}

// parseStart reads a start time as wall-clock ns.
func parseStart(v string, unit time.Duration) (int64, error) {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if unit == 0 {
			switch a := math.Abs(f); {
			case a >= 1e17:
				unit = time.Nanosecond
			case a >= 1e14:
				unit = time.Microsecond
			case a >= 1e11:
				unit = time.Millisecond
			default:
				unit = time.Second
			}
		}
		if unit == time.Nanosecond {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n, nil
			}
		}
		return int64(math.Round(f * float64(unit))), nil
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(l, v); err == nil {
			return t.UnixNano(), nil
		}
	}
	return 0, fmt.Errorf("start time %q: neither a number nor an RFC 3339 time", v)
}

// parseDuration reads a duration: a number in unit (ms by default) or a Go
// duration string.
func parseDuration(v string, unit time.Duration) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if unit == 0 {
			unit = time.Millisecond
		}
		if f < 0 {
			return 0, fmt.Errorf("negative duration %q", v)
		}
		return time.Duration(math.Round(f * float64(unit))), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("duration %q: neither a number nor a duration like 65ms", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", v)
	}
	return d, nil
}

func genericRequest(start int64, d time.Duration, key string) *Request {
	return &Request{
		RequestEnd: start, ResponseEnd: start + int64(d),
		Wire: d, Service: d, Status: Answered, Key: key,
		APIKey: APIProduce, Acks: -1,
	}
}

// ReadGeneric reads a generic CSV or JSONL latency file (told apart by its
// first byte), calling fn per row. Every row counts as a produce request:
// these files are produce latency in lockscope's use.
func ReadGeneric(r io.Reader, fn func(*Request) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := br.Peek(1)
	if err != nil {
		return fmt.Errorf("read latency file: empty: %w", err)
	}
	if first[0] == '{' {
		return readGenericJSONL(br, fn)
	}
	return readGenericCSV(br, fn)
}

// headerless tells a first row that is data, not a header: a start time and
// a duration, with an optional key (start,duration[,key], the shape of most
// load generators' output). Start times are read by magnitude; durations
// without a unit are in the unit of integer start times in ms, µs or ns
// since the epoch (start_ns,duration_ns), and in ms otherwise.
func headerless(row []string) ([]column, bool) {
	if len(row) < 2 || len(row) > 3 {
		return nil, false
	}
	start, err := parseStart(row[0], 0)
	if err != nil {
		return nil, false
	}
	if _, err := parseDuration(row[1], 0); err != nil {
		return nil, false
	}
	unit := time.Duration(0)
	if n, err := strconv.ParseInt(strings.TrimSpace(row[0]), 10, 64); err == nil && n != 0 {
		switch ratio := start / n; {
		case ratio == 1:
			unit = time.Nanosecond
		case ratio == int64(time.Microsecond):
			unit = time.Microsecond
		case ratio == int64(time.Millisecond):
			unit = time.Millisecond
		}
	}
	cols := []column{{colStart, 0}, {colDuration, unit}}
	if len(row) == 3 {
		cols = append(cols, column{colKey, 0})
	}
	return cols, true
}

func readGenericCSV(r io.Reader, fn func(*Request) error) error {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // a key may be there or not
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read latency CSV header: %w", err)
	}
	var pending []string // a headerless file's first row
	cols, ok := headerless(head)
	if ok {
		pending = slices.Clone(head)
	} else {
		cols = make([]column, len(head))
		var haveStart, haveDur bool
		for i, h := range head {
			cols[i] = classify(h)
			haveStart = haveStart || cols[i].role == colStart
			haveDur = haveDur || cols[i].role == colDuration
		}
		if !haveStart || !haveDur {
			return fmt.Errorf("read latency CSV: header %q has no start and duration columns (name them start and duration, with a unit suffix such as duration_ms), and the line is not a headerless start,duration[,key] row", strings.Join(head, ","))
		}
	}
	for line := 2; ; line++ {
		var rec []string
		if pending != nil {
			rec, pending = pending, nil
			line--
		} else {
			rec, err = cr.Read()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read latency CSV: %w", err)
		}
		var start int64
		var d time.Duration
		var key string
		for i, v := range rec {
			if i >= len(cols) {
				break
			}
			switch cols[i].role {
			case colStart:
				start, err = parseStart(v, cols[i].unit)
			case colDuration:
				d, err = parseDuration(v, cols[i].unit)
			case colKey:
				if key != "" {
					key += "-"
				}
				key += v
			}
			if err != nil {
				return fmt.Errorf("read latency CSV line %d: %w", line, err)
			}
		}
		if err := fn(genericRequest(start, d, key)); err != nil {
			return err
		}
	}
}

func readGenericJSONL(r *bufio.Reader, fn func(*Request) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("read latency JSONL line %d: %w", line, err)
		}
		var start int64
		var d time.Duration
		var key string
		var haveStart, haveDur bool
		for name, raw := range obj {
			c := classify(name)
			if c.role == colNone {
				continue
			}
			v := string(raw)
			if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			var err error
			switch c.role {
			case colStart:
				start, err = parseStart(v, c.unit)
				haveStart = true
			case colDuration:
				d, err = parseDuration(v, c.unit)
				haveDur = true
			case colKey:
				key = v
			}
			if err != nil {
				return fmt.Errorf("read latency JSONL line %d: %s: %w", line, name, err)
			}
		}
		if !haveStart || !haveDur {
			return fmt.Errorf("read latency JSONL line %d: need a start and a duration field (e.g. start and duration_ms)", line)
		}
		if err := fn(genericRequest(start, d, key)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read latency JSONL: %w", err)
	}
	return nil
}

// Window lists come from tools that aggregate: a row per time window with
// its latency statistics, like the fixture workload's latency.csv
// (window_start_epoch_ms,window_ms,requests,p50_us,p99_us,max_us), or plain
// start,end rows of windows already known to be slow.

// WindowStat chooses the statistic of an aggregated window list that is
// compared to the SLO.
type WindowStat string

// ReadWindowList reads a window list and returns the windows that were slow:
// for aggregated lists, those whose stat column ("max", "p99", ...)
// exceeds slo; for plain start,end lists, every window.
func ReadWindowList(r io.Reader, slo time.Duration, stat WindowStat, pad time.Duration) (*WindowSet, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read window list header: %w", err)
	}
	idx := map[string]int{}
	for i, h := range head {
		idx[strings.ToLower(strings.TrimSpace(h))] = i
	}
	find := func(names ...string) (int, time.Duration) {
		for _, n := range names {
			for _, u := range []struct {
				s string
				d time.Duration
			}{{"_ns", time.Nanosecond}, {"_us", time.Microsecond}, {"_ms", time.Millisecond}, {"_s", time.Second}, {"", 0}} {
				if i, ok := idx[n+u.s]; ok {
					return i, u.d
				}
			}
		}
		return -1, 0
	}
	startCol, startUnit := find("window_start_epoch", "window_start", "start")
	lenCol, lenUnit := find("window", "window_len", "duration")
	endCol, endUnit := find("window_end_epoch", "window_end", "end")
	countCol, _ := find("requests", "count")
	statCol, statUnit := -1, time.Duration(0)
	if stat != "" {
		statCol, statUnit = find(string(stat))
		if statCol < 0 {
			return nil, fmt.Errorf("read window list: no %q column in %q", stat, strings.Join(head, ","))
		}
		if statUnit == 0 {
			statUnit = time.Millisecond
		}
	}
	if startCol < 0 || (lenCol < 0 && endCol < 0) {
		return nil, fmt.Errorf("read window list: header %q needs a start column and an end or length column", strings.Join(head, ","))
	}
	b := NewBuilder(slo, Wire, pad)
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read window list: %w", err)
		}
		start, err := parseStart(rec[startCol], startUnit)
		if err != nil {
			return nil, fmt.Errorf("read window list line %d: %w", line, err)
		}
		var end int64
		if endCol >= 0 {
			if end, err = parseStart(rec[endCol], endUnit); err != nil {
				return nil, fmt.Errorf("read window list line %d: %w", line, err)
			}
		} else {
			u := lenUnit
			if u == 0 {
				u = time.Millisecond
			}
			d, err := parseDuration(rec[lenCol], u)
			if err != nil {
				return nil, fmt.Errorf("read window list line %d: %w", line, err)
			}
			end = start + int64(d)
		}
		if end < start {
			return nil, fmt.Errorf("read window list line %d: window ends before it starts", line)
		}
		w := Window{Start: start, End: end, Requests: 1}
		if countCol >= 0 {
			w.Requests, _ = strconv.Atoi(strings.TrimSpace(rec[countCol]))
		}
		if statCol >= 0 {
			v, err := parseDuration(rec[statCol], statUnit)
			if err != nil {
				return nil, fmt.Errorf("read window list line %d: %w", line, err)
			}
			if v <= slo {
				continue
			}
			w.Worst = v
		}
		b.AddWindow(w)
	}
	return b.Build(), nil
}
