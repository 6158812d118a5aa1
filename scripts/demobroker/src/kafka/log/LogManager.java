package kafka.log;

import java.io.File;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Owns the logs under the log directory, one {@code topic-partition} directory each, and runs the
 * scheduler thread that flushes them and writes the recovery-point checkpoint (write to a temp
 * file, fsync, rename), as Kafka's log manager does.
 */
public final class LogManager {
    private final File logDir;
    private final LogConfig config;
    private final Map<String, UnifiedLog> logs = new ConcurrentHashMap<>();
    // Kafka's KafkaScheduler is a ScheduledThreadPoolExecutor of kafka-scheduler-N threads; so is
    // this one, so that its idle thread waits where Kafka's does (DelayedWorkQueue.take).
    private final ScheduledThreadPoolExecutor scheduler;

    public LogManager(File logDir, LogConfig config, long flushIntervalMs) throws IOException {
        this.logDir = logDir;
        this.config = config;
        if (!logDir.isDirectory() && !logDir.mkdirs()) throw new IOException("cannot create log dir " + logDir);
        scheduler = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "kafka-scheduler-0");
            t.setDaemon(true);
            return t;
        });
        if (flushIntervalMs > 0) {
            scheduler.scheduleWithFixedDelay(this::flushAndCheckpoint, flushIntervalMs, flushIntervalMs, TimeUnit.MILLISECONDS);
        }
    }

    /** Runs task every periodMs on the scheduler, as Kafka schedules its periodic work (isr-expiration...). */
    public void schedule(Runnable task, long periodMs) {
        scheduler.scheduleWithFixedDelay(task, periodMs, periodMs, TimeUnit.MILLISECONDS);
    }

    public UnifiedLog getOrCreate(String topic, int partition) throws IOException {
        String name = topic + "-" + partition;
        UnifiedLog log = logs.get(name);
        if (log != null) return log;
        synchronized (logs) {
            log = logs.get(name);
            if (log == null) {
                log = new UnifiedLog(new File(logDir, name), config);
                logs.put(name, log);
            }
            return log;
        }
    }

    private void flushAndCheckpoint() {
        try {
            for (UnifiedLog log : logs.values()) log.flush();
            checkpointRecoveryPoints();
        } catch (IOException e) {
            System.err.println("kafka-scheduler-0: " + e);
        }
    }

    private void checkpointRecoveryPoints() throws IOException {
        File tmp = new File(logDir, "recovery-point-offset-checkpoint.tmp");
        StringBuilder sb = new StringBuilder("0\n").append(logs.size()).append('\n');
        for (Map.Entry<String, UnifiedLog> e : logs.entrySet()) {
            String name = e.getKey();
            int dash = name.lastIndexOf('-');
            sb.append(name, 0, dash).append(' ').append(name.substring(dash + 1)).append(' ')
              .append(e.getValue().recoveryPoint()).append('\n');
        }
        try (FileChannel ch = FileChannel.open(tmp.toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(java.nio.ByteBuffer.wrap(sb.toString().getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        }
        Files.move(tmp.toPath(), new File(logDir, "recovery-point-offset-checkpoint").toPath(),
                StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    public void shutdown() {
        scheduler.shutdownNow();
        for (UnifiedLog log : logs.values()) {
            try {
                log.flush();
                log.close();
            } catch (IOException ignored) {
            }
        }
    }
}
