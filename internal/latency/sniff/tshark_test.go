package sniff

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// tsharkPair is a request-response pair as Wireshark's Kafka dissector
// matched it.
type tsharkPair struct {
	clientPort uint16
	corr       int32
	apiKey     int16
	latency    time.Duration
}

type frameRow struct {
	t        int64
	src, dst uint16
	corrs    []string
	keys     []string
	reqFrame []string
}

// tsharkPairs runs tshark over a capture and returns every pair it
// matched, with the time between the frames that completed the request
// and the response (tshark's "time since request").
func tsharkPairs(t *testing.T, path string, port int) []tsharkPair {
	t.Helper()
	out, err := exec.Command("tshark", "-n", "-r", path, "-d", fmt.Sprintf("tcp.port==%d,kafka", port),
		"-Y", "kafka", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "frame.number", "-e", "frame.time_epoch", "-e", "tcp.srcport", "-e", "tcp.dstport",
		"-e", "kafka.correlation_id", "-e", "kafka.api_key", "-e", "kafka.request_frame").Output()
	if err != nil {
		t.Fatalf("tshark (scripts/setup.sh installs it): %v", err)
	}
	frames := map[string]*frameRow{}
	var order []string
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 7 {
			continue
		}
		ts, err := parseEpoch(f[1])
		if err != nil {
			t.Fatalf("tshark time %q: %v", f[1], err)
		}
		src, _ := strconv.Atoi(f[2])
		dst, _ := strconv.Atoi(f[3])
		frames[f[0]] = &frameRow{t: ts, src: uint16(src), dst: uint16(dst), corrs: split(f[4]), keys: split(f[5]), reqFrame: split(f[6])}
		order = append(order, f[0])
	}
	var pairs []tsharkPair
	for _, num := range order {
		fr := frames[num]
		if int(fr.src) != port || len(fr.reqFrame) == 0 {
			continue
		}
		for i, rf := range fr.reqFrame {
			if i >= len(fr.corrs) {
				break
			}
			req := frames[rf]
			if req == nil {
				continue
			}
			corr, _ := strconv.Atoi(fr.corrs[i])
			key := int16(-1)
			for j, c := range req.corrs {
				if c == fr.corrs[i] && j < len(req.keys) {
					k, _ := strconv.Atoi(req.keys[j])
					key = int16(k)
				}
			}
			pairs = append(pairs, tsharkPair{clientPort: fr.dst, corr: int32(corr), apiKey: key, latency: time.Duration(fr.t - req.t)})
		}
	}
	return pairs
}

// parseEpoch parses tshark's seconds.fraction exactly.
func parseEpoch(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return secs*1e9 + ns, nil
}

// compareWithTshark checks that at least minShare of the produce pairs
// tshark matched were found by the sniffer with the same latency to the
// microsecond (exactly, in fact: both read the same time stamps).
func compareWithTshark(t *testing.T, path string, port int, reqs []*latency.Request, minShare float64) (matched, total int) {
	t.Helper()
	type key struct {
		port uint16
		corr int32
	}
	ours := map[key]*latency.Request{}
	for _, r := range reqs {
		if r.Status == latency.Answered {
			ours[key{r.Client.Port(), r.CorrelationID}] = r
		}
	}
	var mismatches []string
	for _, p := range tsharkPairs(t, path, port) {
		if p.apiKey != latency.APIProduce {
			continue
		}
		total++
		r := ours[key{p.clientPort, p.corr}]
		switch {
		case r == nil:
			mismatches = append(mismatches, fmt.Sprintf("port %d corr %d: tshark %v, sniffer none", p.clientPort, p.corr, p.latency))
		case (r.Wire - p.latency).Abs() >= time.Microsecond:
			mismatches = append(mismatches, fmt.Sprintf("port %d corr %d: tshark %v, sniffer %v", p.clientPort, p.corr, p.latency, r.Wire))
		default:
			matched++
		}
	}
	if total == 0 {
		t.Fatal("tshark matched no produce pair")
	}
	t.Logf("tshark oracle: %d of %d produce pairs match to the microsecond", matched, total)
	if float64(matched) < minShare*float64(total) {
		if len(mismatches) > 20 {
			mismatches = mismatches[:20]
		}
		t.Errorf("matched %d of %d tshark produce pairs, want at least %.0f%%:\n%s", matched, total, 100*minShare, strings.Join(mismatches, "\n"))
	}
	return matched, total
}
