import java.io.File;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A small stand-in for a broker's request path, for lockscope's attach and
 * profiler tests: threads contend on a monitor (JavaMonitorEnter) and on a
 * ReentrantLock (ThreadPark), write and force a file under the lock
 * (FileWrite, FileForce), sleep (ThreadSleep) and burn CPU
 * (ExecutionSample). It prints "ready" once its threads run and stops when
 * its standard input closes, so a test that dies takes it along.
 */
public class Busy {
    static final Object monitor = new Object();
    static final ReentrantLock lock = new ReentrantLock();
    static volatile long sink;

    public static void main(String[] args) throws Exception {
        File f = File.createTempFile("lockscope-busy", ".log");
        f.deleteOnExit();
        RandomAccessFile raf = new RandomAccessFile(f, "rw");
        FileChannel ch = raf.getChannel();
        for (int i = 0; i < 4; i++) {
            Thread t = new Thread(() -> handle(ch), "request-handler-" + i);
            t.setDaemon(true);
            t.start();
        }
        Thread cpu = new Thread(Busy::spin, "cpu-spinner");
        cpu.setDaemon(true);
        cpu.start();
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() >= 0) {
        }
        System.exit(0);
    }

    static void handle(FileChannel ch) {
        ByteBuffer buf = ByteBuffer.allocate(512);
        long n = 0;
        try {
            while (true) {
                synchronized (monitor) {
                    buf.clear();
                    ch.write(buf);
                    if (++n % 20 == 0) {
                        ch.force(false);
                        ch.position(0);
                    }
                    // Hold the monitor a while now and then, as a slow
                    // append under a log's lock does, whatever the disk.
                    if (n % 5 == 0) {
                        Thread.sleep(1);
                    }
                }
                lock.lock();
                try {
                    Thread.sleep(1);
                } finally {
                    lock.unlock();
                }
                Thread.sleep(1);
            }
        } catch (Exception e) {
            e.printStackTrace();
        }
    }

    static void spin() {
        while (true) {
            long x = 0;
            for (int i = 0; i < 1_000_000; i++) {
                x += i * 31L ^ x;
            }
            sink = x;
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                return;
            }
        }
    }
}
