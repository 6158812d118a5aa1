package merge

import (
	"testing"

	"github.com/google/pprof/profile"
)

// javaCtx builds a Java context, leaf first.
func javaCtx(names ...string) []*profile.Location {
	var out []*profile.Location
	for _, n := range names {
		out = append(out, &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: n}}}})
	}
	return out
}

// TestIdleWait: waits for work are told from waits for something by their
// Java frames, on the servers' and the JDK's idle loops and on the generic
// shapes (a queue's take, or a sleep, called straight from a run loop).
func TestIdleWait(t *testing.T) {
	for _, c := range []struct {
		name string
		ctx  []*profile.Location
		idle bool
	}{
		{"tomcat exec thread", javaCtx("jdk.internal.misc.Unsafe.park", "java.util.concurrent.locks.LockSupport.park",
			"java.util.concurrent.LinkedBlockingQueue.take", "org.apache.tomcat.util.threads.TaskQueue.take",
			"java.util.concurrent.ThreadPoolExecutor.getTask"), true},
		{"log writer taking its queue", javaCtx("jdk.internal.misc.Unsafe.park", "java.util.concurrent.LinkedBlockingQueue.take",
			"kafka.server.ReplicaManager.lambda$startLogWriter$0", "java.lang.Thread.run"), true},
		{"handler waiting for its future", javaCtx("jdk.internal.misc.Unsafe.park", "java.util.concurrent.CompletableFuture.get",
			"kafka.server.ReplicaManager.appendRecords", "kafka.server.KafkaApis.handle"), false},
		{"periodic task's sleep", javaCtx("java.lang.Thread.sleep", "kafka.Kafka.lambda$main$0", "java.lang.Thread.run"), true},
		{"periodic task's sleep (JDK 21)", javaCtx("java.lang.Thread.sleep0", "java.lang.Thread.sleep",
			"java.util.concurrent.TimeUnit.sleep", "com.example.Flusher.run"), true},
		{"a lock holder sleeping in the append", javaCtx("java.lang.Thread.sleep", "kafka.log.UnifiedLog.append",
			"kafka.cluster.Partition.appendRecordsToLeader", "kafka.server.ReplicaManager.appendRecords"), false},
		{"no Java context", nil, false},
	} {
		if got := idleWait(&interval{ctx: c.ctx}); got != c.idle {
			t.Errorf("%s: idle %v, want %v", c.name, got, c.idle)
		}
	}
}
