package scenario

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/loopfs"
)

func TestTomcatServesAndSyncs(t *testing.T) {
	needRoot(t)
	data := loopfs.Mount(t, loopfs.Options{SizeMiB: 256, DirectIO: true})
	tc := StartTomcat(t, TomcatOptions{DataDir: data})

	reqs, err := Load(context.Background(), LoadOptions{URL: tc.URL, Workers: 8, Rate: 400, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(reqs)
	t.Logf("%d requests, %d failed, p50 %v, p99 %v", s.Requests, s.Failed, percentile(reqs, 0.5), percentile(reqs, 0.99))
	if s.OK < 500 || s.Failed > 0 {
		t.Errorf("got %d ok and %d failed requests (first error %v), want >= 500 ok (a quarter of 400/s for 5s, for a loaded machine) and none failed", s.OK, s.Failed, s.FirstErr)
	}
	if fi, err := os.Stat(filepath.Join(data, "txlog.dat")); err != nil || fi.Size() < int64(s.OK)*1024 {
		t.Errorf("txlog.dat: %v, want >= %d bytes", err, s.OK*1024)
	}

	threads := threadNames(t, tc.PID)
	if !slices.Contains(threads, "txlog-sync") {
		t.Errorf("tomcat's threads %q have no txlog-sync", threads)
	}
	// The connector's threads are http-nio-127.0.0.1-PORT-{Acceptor,
	// Poller,exec-N}; the kernel keeps 15 bytes of a name, "http-nio-127.0.",
	// which is the same for all of them. More than the acceptor and the
	// poller means the request executor has threads.
	if n := countPrefix(threads, "http-nio-"); n < 3 {
		t.Errorf("tomcat's threads %q have %d http-nio-* threads, want the acceptor, the poller and request (exec) threads", threads, n)
	}
}

func countPrefix(names []string, prefix string) int {
	n := 0
	for _, s := range names {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
