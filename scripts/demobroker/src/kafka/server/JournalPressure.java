package kafka.server;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A fault switch: threads that keep writing and fsyncing (and replacing) files next to the logs,
 * so that on ext4 every journal commit carries their data and metadata too and the broker's own
 * writes wait longer for the journal — the neighbour that made Allegro's tails.
 */
public final class JournalPressure {
    private final File dir;
    private final int writeBytes;
    private volatile boolean running = true;

    public JournalPressure(File logDir, int writeKb) throws IOException {
        this.dir = new File(logDir, ".journal-pressure");
        this.writeBytes = writeKb * 1024;
        Files.createDirectories(dir.toPath());
    }

    public void start(int threads) {
        for (int i = 0; i < threads; i++) {
            final int id = i;
            Thread t = new Thread(() -> run(id), "journal-pressure-" + i);
            t.setDaemon(true);
            t.start();
        }
    }

    private void run(int id) {
        byte[] data = new byte[writeBytes];
        ThreadLocalRandom.current().nextBytes(data);
        long n = 0;
        while (running) {
            if (!Faults.active()) {
                sleep(10);
                continue;
            }
            File f = new File(dir, "pressure-" + id + "-" + (n++ % 8));
            try (FileChannel ch = FileChannel.open(f.toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer b = ByteBuffer.wrap(data);
                while (b.hasRemaining()) ch.write(b);
                ch.force(true);
            } catch (IOException e) {
                System.err.println("journal-pressure-" + id + ": " + e);
                sleep(100);
            }
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public void stop() {
        running = false;
    }
}
