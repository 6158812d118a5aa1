package capture

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/lockscope/lockscope/internal/attach/jvmtest"
	"github.com/lockscope/lockscope/internal/profiler"
)

const requestLogLine = `[2019-06-01 12:00:00,500] DEBUG Completed request:RequestHeader(apiKey=PRODUCE, apiVersion=8, clientId=producer-1, correlationId=6) -- {acks=1,timeout=30000,partitionSizes=[orders-0=15514]},response:{responses=[{topic=orders,partition_responses=[{partition=0,error_code=0,base_offset=13}]}],throttle_time_ms=0} from connection 127.0.0.1:9094-127.0.0.1:61040-0;totalTime:2.42,requestQueueTime:0.112,localTime:2.15,remoteTime:0.0,throttleTime:0,responseQueueTime:0.04,sendTime:0.118 (kafka.request.logger)`

func pcapHeader(t *testing.T) string {
	var b bytes.Buffer
	if err := pcapgo.NewWriter(&b).WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestCheckLatencySource: a file source is checked when the capture starts,
// by the latency package's own readers, and the error names the file, the
// cause and what to do.
func TestCheckLatencySource(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, spec string
		wantErr    []string // substrings of the error; nil: no error
		wantWarn   string
	}{
		{"kafka", "kafka:9092", nil, ""},
		{"none", "none", nil, ""},
		{"csv", "csv:" + file("ok.csv", "start,duration_ms\n1700000000.5,4.2\n"), nil, ""},
		{"csv header only", "csv:" + file("head.csv", "timestamp,latency_us"), nil, ""},
		{"csv as jsonl file", "csv:" + file("ok.jsonl", `{"start":1700000000.5,"duration_ms":4.2}`+"\n"), nil, ""},
		{"jsonl", "jsonl:" + file("ok2.jsonl", `{"start":1700000000.5,"duration_ms":4.2}`+"\n{\"sta"), nil, ""},
		{"requestlog", "requestlog:" + file("req.log", requestLogLine+"\n"+requestLogLine[:40]), nil, ""},
		{"requestlog being written", "requestlog:" + file("req2.log", requestLogLine[:40]), nil, ""},
		{"pcap", "pcap:" + file("ok.pcap", pcapHeader(t)), nil, ""},
		{"empty", "csv:" + file("empty.csv", ""), nil, "is empty at the start"},

		{"missing", "csv:" + dir + "/nope.csv", []string{"csv:" + dir + "/nope.csv", "does not exist", "must exist when the capture starts"}, ""},
		{"directory", "requestlog:" + dir, []string{"not a regular file"}, ""},
		{"csv with an unknown header", "csv:" + file("nohead.csv", "when,took\n1700000001,3\n"),
			[]string{"nohead.csv", "has no header", `"when,took"`, "add a first line", "start,duration_ms"}, ""},
		{"csv without header", "csv:" + file("headerless.csv", "1700000000.5,4.2\n1700000001,3\n"), nil, ""},
		{"jsonl not json", "jsonl:" + file("bad.jsonl", "start,duration\n"), []string{"bad.jsonl", "not a JSON object"}, ""},
		{"jsonl without fields", "jsonl:" + file("bad2.jsonl", `{"when":1,"took":2}`+"\n"), []string{"bad2.jsonl", "need a start and a duration"}, ""},
		{"pcap not pcap", "pcap:" + file("bad.pcap", "hello, not a capture\n"), []string{"bad.pcap", "not a pcap or pcapng file"}, ""},
		{"requestlog of another logger", "requestlog:" + file("server.log", "[2019-06-01 12:00:00,500] INFO started (kafka.server.KafkaServer)\n"),
			[]string{"server.log", "none of its first 1 lines is a completed request", "kafka.request.logger"}, ""},
		{"requestlog broken line", "requestlog:" + file("broken.log", "DEBUG Completed request:garbage\n"), []string{"broken.log", "line 1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := checkLatencySource(tc.spec)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("want an error")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			}
			if !strings.Contains(warn, tc.wantWarn) || (tc.wantWarn == "") != (warn == "") {
				t.Errorf("warning %q, want one saying %q", warn, tc.wantWarn)
			}
		})
	}
	if os.Geteuid() != 0 { // root reads anything
		p := file("secret.csv", "start,duration\n")
		os.Chmod(p, 0)
		if _, err := checkLatencySource("csv:" + p); err == nil || !strings.Contains(err.Error(), "readable") {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

// TestRunRejectsBadLatencyFile: a capture given a latency file it cannot
// read fails at once, before it attaches to the JVM (the JVM never opens
// its attach socket), starts a profiler or creates the bundle.
func TestRunRejectsBadLatencyFile(t *testing.T) {
	j := jvmtest.Start(t, jvmtest.Config{})
	headless := filepath.Join(t.TempDir(), "lat.csv")
	os.WriteFile(headless, []byte("when,took\n1700000000.5,4.2\n"), 0o644)
	for _, spec := range []string{"csv:" + filepath.Join(t.TempDir(), "missing.csv"), "csv:" + headless} {
		out := filepath.Join(t.TempDir(), "bundle")
		popts := profiler.DefaultOptions()
		popts.Profiler = profiler.JFR
		// An hour: a capture that started would not return within the test.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := Run(ctx, Options{PID: j.PID, Duration: time.Hour, SLO: 65 * time.Millisecond, Kind: "service",
			Latency: spec, Profiler: popts, Out: out})
		cancel()
		if err == nil || !strings.Contains(err.Error(), spec) {
			t.Errorf("%s: %v, want an error naming the file", spec, err)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%s: the bundle directory was created", spec)
		}
		sock := fmt.Sprintf("/proc/%d/root/tmp/.java_pid%d", j.PID, j.PID)
		if _, serr := os.Stat(sock); serr == nil {
			t.Errorf("%s: the JVM has an attach socket %s: something attached", spec, sock)
		}
		// A profiler this process started names its files by our pid.
		if left, _ := filepath.Glob(fmt.Sprintf("/proc/%d/root/tmp/lockscope-%d-*", j.PID, os.Getpid())); len(left) > 0 {
			t.Errorf("%s: profiler files in the JVM's /tmp: %v", spec, left)
		}
	}
	if !j.Alive() {
		t.Fatalf("the JVM exited:\n%s", j.Output())
	}
}
