package merge

import (
	"strings"

	"github.com/lockscope/lockscope/internal/pprofbuild"
)

// Waiting for work is no cause: a handler parked on its empty request
// queue, a selector in epoll_wait, an acceptor in accept. Such waits grow
// when requests are slow (fewer handlers are idle... or more, when the
// work is stuck elsewhere), so ranking them names a symptom. They are
// recognized by the Java frames of the wait (the idle loops of the JDK's
// and the common servers' thread pools, and a blocking queue's take or
// poll called straight from a run method, and a sleep called straight from
// one: a periodic task's loop waiting for its next round) or by the kernel (epoll, accept,
// a socket read: waiting for a client).

// idleFrames are frames (prefixes) that only wait for work.
var idleFrames = []string{
	"java.util.concurrent.ThreadPoolExecutor.getTask",
	"java.util.concurrent.ScheduledThreadPoolExecutor$DelayedWorkQueue.take",
	"java.util.concurrent.ScheduledThreadPoolExecutor$DelayedWorkQueue.poll",
	"java.util.concurrent.ForkJoinPool.awaitWork",
	"java.util.concurrent.ForkJoinPool.runWorker",
	"java.util.TimerThread.mainLoop",
	"java.lang.ref.ReferenceQueue.remove",
	"java.lang.ref.Reference.waitForReferencePendingList",
	"sun.nio.ch.SelectorImpl.select",
	"sun.nio.ch.SelectorImpl.lockAndDoSelect",
	"sun.nio.ch.EPoll.wait",
	"sun.nio.ch.EPollSelectorImpl.doSelect",
	"sun.nio.ch.ServerSocketChannelImpl.accept",
	"sun.nio.ch.NioSocketImpl.accept",
	"sun.nio.ch.Net.accept",
	"sun.nio.ch.Net.poll",
	"java.net.ServerSocket.accept",
	"java.net.ServerSocket.implAccept",
	"sun.nio.ch.NioSocketImpl.park",
	// Jetty
	"org.eclipse.jetty.util.thread.QueuedThreadPool$Runner.idleJobPoll",
	"org.eclipse.jetty.util.thread.QueuedThreadPool.idleJobPoll",
	"org.eclipse.jetty.util.thread.ReservedThreadExecutor$ReservedThread.reservedWait",
	"org.eclipse.jetty.io.ManagedSelector.select",
	"org.eclipse.jetty.io.ManagedSelector$SelectorProducer.select",
	// Tomcat
	"org.apache.tomcat.util.threads.TaskQueue.take",
	"org.apache.tomcat.util.threads.TaskQueue.poll",
	"org.apache.tomcat.util.net.NioEndpoint$Poller.run",
	"org.apache.tomcat.util.net.Acceptor.run",
	// Kafka (and the demo broker, which names its classes alike)
	"kafka.network.RequestChannel.receiveRequest",
	"kafka.network.Processor.poll",
	"kafka.network.Acceptor.run",
	"org.apache.kafka.common.network.Selector.select",
	"kafka.utils.KafkaScheduler",
	"org.apache.kafka.server.util.KafkaScheduler",
}

// idleWait reports whether an off-CPU interval was a wait for work.
func idleWait(iv *interval) bool {
	if k, _, _ := kernelWait(iv.kernel); k == idleKind {
		return true
	}
	waiting := false
	for i, l := range iv.ctx {
		if i > 24 {
			break
		}
		fn := l.Line[0].Function
		if pprofbuild.KindOf(fn) != pprofbuild.KindJava {
			continue
		}
		n := fn.Name
		for _, p := range idleFrames {
			if strings.HasPrefix(n, p) {
				return true
			}
		}
		switch {
		case queueTake(n) || sleepCall(n):
			waiting = true
		case waiting && machinery(n):
		case waiting:
			// The frame that called take or poll: a run loop (or a
			// lambda in one) waits for its next job.
			return strings.HasSuffix(n, ".run") || strings.Contains(n, "lambda$")
		}
	}
	return false
}

// sleepCall: a frame of Thread.sleep or of a TimeUnit's sleep.
func sleepCall(n string) bool {
	return strings.HasPrefix(n, "java.lang.Thread.sleep") || strings.HasPrefix(n, "java.util.concurrent.TimeUnit.sleep")
}

// queueTake: a blocking queue's take or poll.
func queueTake(n string) bool {
	i := strings.LastIndexByte(n, '.')
	if i < 0 {
		return false
	}
	class, method := n[:i], n[i+1:]
	return (method == "take" || method == "poll" || method == "drainTo") &&
		(strings.Contains(class, "Queue") || strings.Contains(class, "Deque"))
}

// jvmInternal: a thread of the JVM itself (its GC, JIT, VM thread and
// service threads) or of the profiler: never a waiter whose waiting the
// verdict explains.
func jvmInternal(name string) bool {
	for _, p := range []string{"VM Thread", "VM Periodic Task Thread", "GC Thread", "G1 ", "C1 CompilerThread",
		"C2 CompilerThread", "Sweeper thread", "Signal Dispatcher", "Service Thread", "Monitor Deflation Thread",
		"Common-Cleaner", "Reference Handler", "Finalizer", "Notification Thread", "Attach Listener", "JFR ",
		"Async-profiler", "async-profiler", "process reaper", "DestroyJavaVM", "Z", "Shenandoah", "Parallel GC",
		"VM JFR", "Java2D", "Cleaner"} {
		// The kernel's name of a thread the JVM did not name in the
		// recording is cut at 15 bytes ("VM Periodic Tas").
		if strings.HasPrefix(name, p) || len(name) == 15 && strings.HasPrefix(p, name) {
			if p == "Z" && !(strings.HasPrefix(name, "ZWorker") || strings.HasPrefix(name, "ZDirector") ||
				strings.HasPrefix(name, "ZDriver") || strings.HasPrefix(name, "ZStat") || strings.HasPrefix(name, "ZUnmapper")) {
				continue
			}
			return true
		}
	}
	return false
}
