package kafka.server;

/**
 * When the fault switches act: always (the default), or on a schedule of {@code onMs} on, {@code offMs}
 * off, starting off, so that a test knows the windows in which the cause was there. Each switch prints
 * {@code fault on NANOS} or {@code fault off NANOS} with {@link System#nanoTime()}, which HotSpot reads
 * from CLOCK_MONOTONIC, the clock of lockscope's bundles.
 */
public final class Faults {
    private static volatile boolean active = true;

    private Faults() {}

    /** Whether the fault switches act now. */
    public static boolean active() {
        return active;
    }

    /** Starts the schedule; with {@code onMs <= 0} the faults act all the time. */
    public static void schedule(long onMs, long offMs) {
        if (onMs <= 0) return;
        active = false;
        Thread t = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(offMs);
                    active = true;
                    System.out.println("fault on " + System.nanoTime());
                    System.out.flush();
                    Thread.sleep(onMs);
                    active = false;
                    System.out.println("fault off " + System.nanoTime());
                    System.out.flush();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "fault-schedule");
        t.setDaemon(true);
        t.start();
    }
}
