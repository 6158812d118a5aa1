package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/pyroscope/pyroscopetest"
)

func runContinuous(ctx context.Context, args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"continuous"}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestContinuousFlagErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "token")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"--pid", "--pyroscope: give"}},
		{[]string{"--pid", "1", "--pyroscope", "http://x:4040", "--period", "100ms"}, []string{"--period 100ms: at least 1s"}},
		{[]string{"--pid", "1", "--pyroscope", "http://x:4040", "--label", "a-b=1", "--label", "a.b=2"}, []string{"both become a_b"}},
		{[]string{"--pid", "1", "--pyroscope", "http://x:4040", "--app", "my app"}, []string{"--app"}},
		{[]string{"--pid", "1", "--pyroscope", "http://x:4040", "--pyroscope-token-file", empty}, []string{"the file is empty"}},
		{[]string{"--pid", "1", "--pyroscope", "http://x:4040", "--pyroscope-password-file", "/nonexistent"}, []string{"--pyroscope-password-file", "no such file"}},
	} {
		_, err := runContinuous(context.Background(), tc.args...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("continuous %v: %v, want %q", tc.args, err, w)
			}
		}
	}
}

// TestContinuousCommand runs `lockscope continuous` against the demo broker
// and a test ingest endpoint: the flags reach the pushes (app, labels,
// bearer token from a file), and an interrupt ends it cleanly.
func TestContinuousCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: continuous mode captures with BPF and a packet socket (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := pyroscopetest.New(t)
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	keep := filepath.Join(t.TempDir(), "bundles")

	runCtx, interrupt := context.WithCancel(ctx)
	go func() {
		for len(srv.Ingests()) == 0 && runCtx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		interrupt()
	}()
	addr := b.Addr()
	out, err := runContinuous(runCtx, "--pid", strconv.Itoa(b.Pid()), "--pyroscope", srv.URL, "--period", "2s", "--app", "kafka-test",
		"--label", "broker=7", "--label", "kafka-cluster=demo", "--pyroscope-token-file", token,
		"--latency", "kafka:"+addr[strings.LastIndexByte(addr, ':')+1:], "--iface", "lo", "--profiler", "jfr", "--keep-bundles", keep)
	if err != nil {
		t.Fatalf("continuous: %v\n%s", err, out)
	}
	t.Logf("output:\n%s", out)
	ins := srv.Ingests()
	if len(ins) == 0 {
		t.Fatal("nothing pushed")
	}
	for _, in := range ins {
		if in.App != "kafka-test" || in.Labels["broker"] != "7" || in.Labels["kafka_cluster"] != "demo" || in.Labels["host"] == "" ||
			in.Header.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("push %s %v auth %q", in.App, in.Labels, in.Header.Get("Authorization"))
		}
	}
	if !strings.Contains(out, "profiles queued for Pyroscope") || !strings.Contains(out, "profiles pushed") {
		t.Errorf("output lacks the period and push lines:\n%s", out)
	}
	if ents, _ := os.ReadDir(keep); len(ents) == 0 {
		t.Errorf("--keep-bundles %s: no bundle kept", keep)
	}
}
