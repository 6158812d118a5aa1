package demobroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// StartCluster starts n demo brokers as one replicated cluster on this
// host: broker i listens on a free loopback port, keeps its logs in
// LogDir/broker-i and replicates every partition it follows from its
// leader. each(i, &cfg) adjusts broker i's configuration (its fault
// switches), given the shared one. On an error the brokers started are
// closed.
func StartCluster(ctx context.Context, n int, cfg Config, each func(i int, c *Config)) ([]*Broker, error) {
	if n < 2 {
		return nil, fmt.Errorf("demo cluster: %d brokers, want at least 2", n)
	}
	if cfg.LogDir == "" {
		return nil, errors.New("demo cluster: log dir is required")
	}
	ports := make([]int, n)
	var spec []string
	for i := range ports {
		// A free port now; another process could take it before the
		// broker binds, which then fails to start saying so.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("demo cluster: finding a free port: %w", err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		spec = append(spec, fmt.Sprintf("%d@127.0.0.1:%d", i, ports[i]))
	}
	var bs []*Broker
	for i := range n {
		c := cfg
		c.BrokerID, c.Cluster, c.Port = i, strings.Join(spec, ","), ports[i]
		c.LogDir = filepath.Join(cfg.LogDir, fmt.Sprintf("broker-%d", i))
		if each != nil {
			each(i, &c)
		}
		b, err := Start(ctx, c)
		if err != nil {
			for _, o := range bs {
				o.Close()
			}
			return nil, fmt.Errorf("demo cluster: broker %d: %w", i, err)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// StartTestCluster starts three brokers of one cluster for a test, with
// three partitions per topic and broker 0 writing Kafka's request log,
// whose path it returns; each adjusts broker i's configuration (its
// faults). A failure to start fails tb; the brokers stop when it ends.
func StartTestCluster(tb testing.TB, ctx context.Context, each func(i int, c *Config)) ([]*Broker, string) {
	tb.Helper()
	root := tb.TempDir()
	requestLog := filepath.Join(root, "request-0.log")
	bs, err := StartCluster(ctx, 3, Config{LogDir: root, Partitions: 3}, func(i int, c *Config) {
		if i == 0 {
			c.RequestLog = requestLog
		}
		if each != nil {
			each(i, c)
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, b := range bs {
			b.Close()
		}
	})
	return bs, requestLog
}
