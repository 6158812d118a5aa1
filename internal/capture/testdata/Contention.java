import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Lock contention with a known cause, for lockscope's blame tests. Threads
 * are named after their role so that tests can find them in profiles.
 *
 *   java Contention.java monitor|reentrant|chain|notify|fsync SECONDS [DIR]
 *
 * monitor:   a holder sleeps 100 ms inside a monitor, 4 waiters contend for it.
 * reentrant: the same with a ReentrantLock.
 * chain:     waiters want lock A, held by a middle thread that waits for
 *            lock B, held by a sleeper (A -> B -> sleep).
 * notify:    waiters in Object.wait are woken by notifyAll every 20 ms by a
 *            notifier that sleeps outside the monitor.
 * fsync:     a holder writes and fsyncs a file in DIR inside a monitor while
 *            pressure threads fsync large files beside it; 4 waiters contend.
 */
public class Contention {
    static volatile boolean running = true;
    static long counter;

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static Thread start(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        long secs = Long.parseLong(args[1]);
        Object lock = new Object();
        ReentrantLock rlock = new ReentrantLock();
        switch (mode) {
            case "monitor":
                start("holder", () -> { while (running) { synchronized (lock) { sleep(100); } sleep(1); } });
                for (int i = 0; i < 4; i++) start("waiter-" + i, () -> { while (running) { synchronized (lock) { counter++; } } });
                break;
            case "reentrant":
                start("holder", () -> { while (running) { rlock.lock(); try { sleep(100); } finally { rlock.unlock(); } sleep(1); } });
                for (int i = 0; i < 4; i++) start("waiter-" + i, () -> { while (running) { rlock.lock(); try { counter++; } finally { rlock.unlock(); } } });
                break;
            case "chain": {
                Object a = new Object(), b = new Object();
                start("sleeper", () -> { while (running) { synchronized (b) { sleep(100); } sleep(1); } });
                start("middle", () -> { while (running) { synchronized (a) { synchronized (b) { counter++; } } sleep(1); } });
                for (int i = 0; i < 3; i++) start("waiter-" + i, () -> { while (running) { synchronized (a) { counter++; } } });
                break;
            }
            case "notify":
                for (int i = 0; i < 4; i++) start("waiter-" + i, () -> {
                    while (running) {
                        synchronized (lock) {
                            try { lock.wait(); } catch (InterruptedException e) { return; }
                        }
                    }
                });
                start("notifier", () -> { while (running) { synchronized (lock) { lock.notifyAll(); } sleep(20); } });
                break;
            case "fsync": {
                File dir = new File(args[2]);
                for (int i = 0; i < 2; i++) {
                    final int id = i;
                    start("pressure-" + i, () -> {
                        byte[] data = new byte[4 << 20];
                        while (running) {
                            try (FileChannel ch = FileChannel.open(new File(dir, "pressure-" + id).toPath(), StandardOpenOption.CREATE,
                                    StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                                ch.write(ByteBuffer.wrap(data));
                                ch.force(true);
                            } catch (IOException e) {
                                sleep(10);
                            }
                        }
                    });
                }
                start("holder", () -> {
                    try (FileChannel ch = FileChannel.open(new File(dir, "log").toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                        ByteBuffer rec = ByteBuffer.allocate(4096);
                        while (running) {
                            synchronized (lock) {
                                rec.clear();
                                ch.write(rec);
                                ch.force(true);
                            }
                            sleep(1);
                        }
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                for (int i = 0; i < 4; i++) start("waiter-" + i, () -> { while (running) { synchronized (lock) { counter++; } } });
                break;
            }
            default:
                throw new IllegalArgumentException("unknown mode " + mode);
        }
        System.out.println("running " + mode);
        System.out.flush();
        Thread.sleep(secs * 1000);
        running = false;
    }
}
