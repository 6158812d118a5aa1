package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/serve"
)

func TestServeCheckConfig(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("t0ken\n"), 0o600)
	b, err := os.ReadFile("../../scripts/monitoring/lockscope-serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(cfg, bytes.Replace(b, []byte("/etc/lockscope/alertmanager-token"), []byte(token), 1), 0o600)
	for _, tc := range []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"serve", "--config", cfg, "--check-config"}, cfg + ": ok", true},
		{[]string{"serve"}, "--config: give the config file", false},
		{[]string{"serve", "--config", filepath.Join(dir, "nope.yaml")}, "no such file", false},
	} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(tc.args)
		err := root.Execute()
		got := out.String()
		if err != nil {
			got += err.Error()
		}
		if (err == nil) != tc.ok || !strings.Contains(got, tc.want) {
			t.Errorf("lockscope %v: %v %q, want ok=%v and %q", tc.args, err, got, tc.ok, tc.want)
		}
	}
}

// TestServeProcess is not a test: TestServeSIGTERM runs this test binary
// as `lockscope serve` through it, so that a real SIGTERM reaches main.
func TestServeProcess(t *testing.T) {
	cfg := os.Getenv("LOCKSCOPE_TEST_SERVE_CONFIG")
	if cfg == "" {
		return
	}
	os.Args = []string{"lockscope", "serve", "--config", cfg}
	main()
	os.Exit(0)
}

// TestServeSIGTERM: `lockscope serve` gets SIGTERM while a capture runs:
// the capture is stopped, written and recorded, the process exits 0, and
// no recording is left in the broker JVM.
func TestServeSIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: serve sniffs a packet socket and captures with BPF (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: filepath.Join(dir, "logs"), Partitions: 3, StallMs: 200, StallEvery: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	os.WriteFile(filepath.Join(dir, "token"), []byte("sigterm-token\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "kafka.pid"), []byte(fmt.Sprint(b.Pid())), 0o644)
	bundles := filepath.Join(dir, "bundles")
	cfg := fmt.Sprintf(`listen: %s
auth: {bearer_token_file: %s/token}
target: {pid_file: %s/kafka.pid}
capture: {duration: 5m, latency: "kafka:%s", interface: lo, profiler: jfr, require_offcpu: true}
alerts: {matchers: [alertname=KafkaProduceLatencyHigh]}
bundles: {dir: %s}
quota: {min_free_bytes: 0}
`, addr, dir, dir, b.Addr()[strings.LastIndexByte(b.Addr(), ':')+1:], bundles)
	os.WriteFile(filepath.Join(dir, "serve.yaml"), []byte(cfg), 0o600)

	var logs bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeProcess$")
	cmd.Env = append(os.Environ(), "LOCKSCOPE_TEST_SERVE_CONFIG="+filepath.Join(dir, "serve.yaml"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	}()
	url := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal("serve never answered /healthz")
		}
		time.Sleep(100 * time.Millisecond)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"), kgo.AllowAutoTopicCreation(), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		for lctx.Err() == nil {
			cl.Produce(lctx, &kgo.Record{Value: []byte("x")}, nil)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"KafkaProduceLatencyHigh"}}]}`
	req, _ := http.NewRequest("POST", url+"/alerts", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sigterm-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr serve.TriggerResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if resp.StatusCode != 202 || tr.Status != "started" {
		t.Fatalf("alert: %d %+v", resp.StatusCode, tr)
	}
	vm, err := attach.Open(b.Pid(), attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		out, _ := vm.Jcmd(ctx, "JFR.check")
		if strings.Contains(out, "lockscope") {
			break
		}
		if i > 240 {
			t.Fatal("the capture's recording never started in the JVM")
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not exit within 60s of SIGTERM")
	}
	out, err := vm.Jcmd(ctx, "JFR.check")
	if err != nil || strings.Contains(out, "lockscope") {
		t.Errorf("after SIGTERM the JVM still has: %v\n%s", err, out)
	}
	var rec serve.Record
	raw, _ := os.ReadFile(filepath.Join(bundles, tr.ID+".json"))
	if json.Unmarshal(raw, &rec) != nil || rec.Outcome != serve.OutcomeInterrupted {
		t.Errorf("capture record after SIGTERM: %s", raw)
	}
	bd, err := bundle.Open(filepath.Join(bundles, tr.ID))
	if err != nil {
		t.Fatal(err)
	}
	if bd.Meta.Ended != "interrupted" || !bd.Has(bundle.RecordingFile) || !bd.Has(bundle.SlowProfile) {
		t.Errorf("bundle after SIGTERM: ended %q, files %v", bd.Meta.Ended, bd.Meta.Files)
	}
	if !strings.Contains(logs.String(), "stopping: writing what capture") {
		t.Errorf("serve's log does not say it is writing the capture in flight:\n%s", logs.String())
	}
}
