package kafka.server;

import java.util.concurrent.ThreadLocalRandom;

/**
 * A fault switch: a thread that allocates {@code mbPerSecond} of objects and keeps a large share of
 * them alive for a while (a cache churning its entries), so that a small heap collects often and its
 * collections copy and mark many live objects: stop-the-world pauses every request waits through.
 */
public final class GCStorm {
    private final int mbPerSecond;
    private final Object[] retained;

    /** retainMb is how much of what is allocated stays reachable (a ring of small arrays). */
    public GCStorm(int mbPerSecond, int retainMb) {
        this.mbPerSecond = mbPerSecond;
        this.retained = new Object[Math.max(1, retainMb * 1024 * 1024 / 256)];
    }

    public void start() {
        Thread t = new Thread(this::run, "gc-storm");
        t.setDaemon(true);
        t.start();
    }

    private void run() {
        long perTick = mbPerSecond * 1024L * 1024 / 100; // bytes per 10 ms
        int next = 0;
        while (true) {
            long t0 = System.nanoTime();
            if (Faults.active()) {
                for (long done = 0; done < perTick; done += 256) {
                    // 256-byte arrays linked in a ring: many small live objects to mark and copy.
                    retained[next] = new long[30];
                    next = (next + 1 + ThreadLocalRandom.current().nextInt(3)) % retained.length;
                }
            }
            long left = 10_000_000 - (System.nanoTime() - t0);
            if (left > 0) {
                try {
                    Thread.sleep(left / 1_000_000, (int) (left % 1_000_000));
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }
}
