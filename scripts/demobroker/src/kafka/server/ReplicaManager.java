package kafka.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import kafka.cluster.Partition;
import kafka.log.LogManager;
import kafka.log.UnifiedLog;
import kafka.protocol.Errors;

/** Topics and their partitions; creates topics on first metadata request when allowed. */
public final class ReplicaManager {
    /** The outcome of appending to one partition. */
    public static final class PartitionResult {
        public final short error;
        public final long baseOffset;
        public final long appendTimeMs;
        public final String message;

        PartitionResult(short error, long baseOffset, long appendTimeMs, String message) {
            this.error = error;
            this.baseOffset = baseOffset;
            this.appendTimeMs = appendTimeMs;
            this.message = message;
        }
    }

    private final LogManager logManager;
    private final int defaultPartitions;
    private final boolean autoCreate;
    private final Map<String, Partition[]> topics = new ConcurrentHashMap<>();

    public ReplicaManager(LogManager logManager, int defaultPartitions, boolean autoCreate) {
        this.logManager = logManager;
        this.defaultPartitions = defaultPartitions;
        this.autoCreate = autoCreate;
    }

    /** Returns the topic's partitions, creating the topic when allowed; null if unknown. */
    public Partition[] topic(String name, boolean allowCreate) throws IOException {
        Partition[] ps = topics.get(name);
        if (ps != null || !(allowCreate && autoCreate) || !validTopicName(name)) return ps;
        synchronized (topics) {
            ps = topics.get(name);
            if (ps == null) {
                ps = new Partition[defaultPartitions];
                for (int i = 0; i < ps.length; i++) ps[i] = new Partition(name, i, logManager.getOrCreate(name, i));
                topics.put(name, ps);
            }
            return ps;
        }
    }

    public List<String> topicNames() {
        return new ArrayList<>(topics.keySet());
    }

    static boolean validTopicName(String name) {
        return name != null && !name.isEmpty() && name.length() <= 249 && name.matches("[a-zA-Z0-9._-]+")
                && !name.equals(".") && !name.equals("..");
    }

    /** Returns the partition's high watermark (its log end: there are no followers), or -1 if unknown. */
    public long highWatermark(String topic, int partition) {
        Partition[] ps = topics.get(topic);
        if (ps == null || partition < 0 || partition >= ps.length) return -1;
        return ps[partition].logEndOffset();
    }

    /** Reads one partition for Fetch; null when the topic-partition is unknown. */
    public UnifiedLog.FetchData fetch(String topic, int partition, long offset, int maxBytes) throws IOException {
        Partition[] ps = topics.get(topic);
        if (ps == null || partition < 0 || partition >= ps.length) return null;
        return ps[partition].read(offset, maxBytes);
    }

    /** An append waiting for the log writer. */
    private static final class PendingAppend {
        final String topic;
        final int partition;
        final ByteBuffer records;
        final CompletableFuture<PartitionResult> done = new CompletableFuture<>();

        PendingAppend(String topic, int partition, ByteBuffer records) {
            this.topic = topic;
            this.partition = partition;
            this.records = records;
        }
    }

    private volatile LinkedBlockingQueue<PendingAppend> appendQueue;

    /**
     * The hand-off append mode: one kafka-log-writer thread does every append, fed through a queue,
     * and the request handlers wait for its answer on a future (as a purgatory or a log's sync thread
     * makes them wait), so a slow append reaches them through a hand-off, not a monitor.
     */
    public void startLogWriter() {
        LinkedBlockingQueue<PendingAppend> q = new LinkedBlockingQueue<>();
        Thread t = new Thread(() -> {
            while (true) {
                PendingAppend p;
                try {
                    p = q.take();
                } catch (InterruptedException e) {
                    return;
                }
                try {
                    p.done.complete(appendNow(p.topic, p.partition, p.records));
                } catch (Throwable e) {
                    p.done.completeExceptionally(e);
                }
            }
        }, "kafka-log-writer");
        t.setDaemon(true);
        t.start();
        appendQueue = q;
    }

    public PartitionResult appendRecords(String topic, int partition, ByteBuffer records) throws IOException {
        LinkedBlockingQueue<PendingAppend> q = appendQueue;
        if (q == null) return appendNow(topic, partition, records);
        PendingAppend p = new PendingAppend(topic, partition, records);
        q.add(p);
        try {
            return p.done.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for the log writer", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException) throw (IOException) e.getCause();
            throw new IOException("log writer failed: " + e.getCause(), e.getCause());
        }
    }

    private PartitionResult appendNow(String topic, int partition, ByteBuffer records) throws IOException {
        Partition[] ps = topics.get(topic);
        if (ps == null || partition < 0 || partition >= ps.length) {
            return new PartitionResult(Errors.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, "unknown topic-partition " + topic + "-" + partition);
        }
        try {
            UnifiedLog.AppendInfo info = ps[partition].appendRecordsToLeader(records);
            return new PartitionResult(Errors.NONE, info.firstOffset, info.appendTimeMs, null);
        } catch (UnifiedLog.CorruptRecordException e) {
            System.err.println("corrupt batch for " + topic + "-" + partition + ": " + e.getMessage());
            return new PartitionResult(Errors.CORRUPT_MESSAGE, -1, -1, e.getMessage());
        }
    }
}
