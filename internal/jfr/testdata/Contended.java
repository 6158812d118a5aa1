// A small contended program for the JFR oracle test (oracle_test.go):
// threads fight over a monitor and a ReentrantLock, sleep now and then and
// commit a custom event with fields of every primitive kind, so that the
// recording has JavaMonitorEnter, ThreadPark, ThreadSleep, ExecutionSample
// and a custom event type with real stacks.
import java.util.concurrent.locks.ReentrantLock;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;

public class Contended {
    @Name("lockscope.test.Work")
    @Label("Work")
    static class Work extends Event {
        @Label("Iteration") int n;
        @Label("Tag") String tag;
        @Label("Big") long big;
        @Label("Flag") boolean flag;
        @Label("Ratio") double ratio;
        @Label("Small") float small;
        @Label("Short") short sh;
        @Label("Byte") byte by;
        @Label("Char") char ch;
        @Label("Worker") Thread worker;
        @Label("Class") Class<?> cls;
    }

    static final Object monitor = new Object();
    static final ReentrantLock lock = new ReentrantLock();
    static volatile long sink;

    static void spin(int n) {
        long x = sink;
        for (int i = 0; i < n; i++) {
            x = x * 31 + i;
        }
        sink = x;
    }

    static void underMonitor() {
        synchronized (monitor) {
            spin(200_000);
        }
    }

    static void underLock() {
        lock.lock();
        try {
            spin(100_000);
        } finally {
            lock.unlock();
        }
    }

    public static void main(String[] args) throws Exception {
        long end = System.currentTimeMillis() + Long.parseLong(args[0]);
        Thread[] ts = new Thread[4];
        for (int i = 0; i < ts.length; i++) {
            final int id = i;
            ts[i] = new Thread(() -> {
                int n = 0;
                while (System.currentTimeMillis() < end) {
                    Work w = new Work();
                    w.begin();
                    underMonitor();
                    underLock();
                    if (n % 8 == 0) {
                        try {
                            Thread.sleep(1);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    w.n = n;
                    w.tag = n % 3 == 0 ? null : (n % 3 == 1 ? "" : "tag-\u00e9-" + id);
                    w.big = -1L - n;
                    w.flag = n % 2 == 0;
                    w.ratio = n / 3.0;
                    w.small = -n / 4.0f;
                    w.sh = (short) -n;
                    w.by = (byte) n;
                    w.ch = (char) ('a' + n % 26);
                    w.worker = Thread.currentThread();
                    w.cls = Contended.class;
                    w.commit();
                    n++;
                }
            }, "contender-" + i);
            ts[i].start();
        }
        for (Thread t : ts) {
            t.join();
        }
    }
}
