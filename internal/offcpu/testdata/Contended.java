// A JVM thread blocked on a contended monitor, for the off-CPU collector's
// tests: run with `java Contended.java`. It prints "ready", waits for a line
// on stdin (the collector attaches meanwhile), then lockscope-holder holds a
// monitor for a second while lockscope-waiter blocks entering it. Both
// threads then stay alive a little so that their names can still be read.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.CountDownLatch;

public class Contended {
    static final Object lock = new Object();

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new RuntimeException(e);
        }
    }

    public static void main(String[] args) throws Exception {
        System.out.println("ready");
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in)).readLine();

        CountDownLatch held = new CountDownLatch(1);
        Thread holder = new Thread(() -> {
            synchronized (lock) {
                held.countDown();
                sleep(1000);
            }
            sleep(500);
        }, "lockscope-holder");
        Thread waiter = new Thread(() -> {
            try {
                held.await();
            } catch (InterruptedException e) {
                throw new RuntimeException(e);
            }
            synchronized (lock) {
                lock.hashCode();
            }
            sleep(500);
        }, "lockscope-waiter");
        holder.start();
        waiter.start();
        holder.join();
        waiter.join();
        System.out.println("done");
    }
}
