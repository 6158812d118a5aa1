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
    private final Cluster cluster;
    private final int selfId;
    private final long replicaLagTimeMaxMs;
    // acks=all produce requests waiting for their partitions' high watermarks (the purgatory).
    private final List<DelayedProduce> delayedProduces = new ArrayList<>();

    public ReplicaManager(LogManager logManager, int defaultPartitions, boolean autoCreate) {
        this(logManager, defaultPartitions, autoCreate, Cluster.single(0, "127.0.0.1", 0), 0, 10_000);
    }

    public ReplicaManager(LogManager logManager, int defaultPartitions, boolean autoCreate, Cluster cluster, int selfId,
            long replicaLagTimeMaxMs) {
        this.logManager = logManager;
        this.defaultPartitions = defaultPartitions;
        this.autoCreate = autoCreate;
        this.cluster = cluster;
        this.selfId = selfId;
        this.replicaLagTimeMaxMs = replicaLagTimeMaxMs;
    }

    public Cluster cluster() {
        return cluster;
    }

    /**
     * Returns the topic's partitions, creating the topic when allowed; null if unknown. In a
     * replicated cluster a partition this broker holds no replica of is a null entry.
     */
    public Partition[] topic(String name, boolean allowCreate) throws IOException {
        Partition[] ps = topics.get(name);
        if (ps != null || !(allowCreate && autoCreate) || !validTopicName(name)) return ps;
        synchronized (topics) {
            ps = topics.get(name);
            if (ps == null) {
                ps = new Partition[defaultPartitions];
                for (int i = 0; i < ps.length; i++) {
                    if (!cluster.replicated()) {
                        ps[i] = new Partition(name, i, logManager.getOrCreate(name, i));
                        continue;
                    }
                    int[] replicas = cluster.replicas(name, i);
                    for (int r : replicas) {
                        if (r == selfId) {
                            ps[i] = new Partition(name, i, logManager.getOrCreate(name, i), replicas, selfId);
                            ps[i].setReplicaLagTimeMaxMs(replicaLagTimeMaxMs);
                        }
                    }
                }
                topics.put(name, ps);
            }
            return ps;
        }
    }

    /** The local replica of a partition, or null. */
    public Partition partition(String topic, int partition) {
        Partition[] ps = topics.get(topic);
        if (ps == null || partition < 0 || partition >= ps.length) return null;
        return ps[partition];
    }

    /** The local follower replicas of partitions that leaderId leads. */
    public List<Partition> followerPartitions(int leaderId) {
        List<Partition> out = new ArrayList<>();
        for (Partition[] ps : topics.values()) {
            for (Partition p : ps) if (p != null && !p.isLeader() && p.leader() == leaderId) out.add(p);
        }
        return out;
    }

    /** An acks=all produce request parked until its partitions' high watermarks pass its batches. */
    public static final class DelayedProduce {
        final Partition[] partitions;
        final long[] required;
        final Runnable complete;
        boolean done;

        public DelayedProduce(Partition[] partitions, long[] required, Runnable complete) {
            this.partitions = partitions;
            this.required = required;
            this.complete = complete;
        }

        /** Whether every partition's high watermark has passed what it waits for. */
        public boolean satisfied() {
            for (int i = 0; i < partitions.length; i++) {
                if (partitions[i] != null && partitions[i].highWatermark() < required[i]) return false;
            }
            return true;
        }
    }

    /** Parks d unless it is satisfied already; returns whether it was completed at once. */
    public boolean park(DelayedProduce d) {
        synchronized (delayedProduces) {
            if (d.satisfied()) {
                d.done = true;
            } else {
                delayedProduces.add(d);
                return false;
            }
        }
        d.complete.run();
        return true;
    }

    /** Takes d out of the purgatory (it timed out); false if it was completed meanwhile. */
    public boolean expire(DelayedProduce d) {
        synchronized (delayedProduces) {
            if (d.done) return false;
            d.done = true;
            delayedProduces.remove(d);
            return true;
        }
    }

    /** Completes the parked requests a high watermark's advance satisfied, on the caller's thread. */
    private void tryCompleteDelayed() {
        List<DelayedProduce> ready = new ArrayList<>();
        synchronized (delayedProduces) {
            for (java.util.Iterator<DelayedProduce> it = delayedProduces.iterator(); it.hasNext(); ) {
                DelayedProduce d = it.next();
                if (d.satisfied()) {
                    d.done = true;
                    it.remove();
                    ready.add(d);
                }
            }
        }
        for (DelayedProduce d : ready) d.complete.run();
    }

    /** Rechecks the ISRs (a follower that stopped fetching leaves it) and the purgatory. */
    public void checkReplicas() {
        long now = System.currentTimeMillis();
        boolean advanced = false;
        for (Partition[] ps : topics.values()) {
            for (Partition p : ps) if (p != null && p.isLeader()) advanced |= p.advance(now);
        }
        if (advanced) tryCompleteDelayed();
    }

    public List<String> topicNames() {
        return new ArrayList<>(topics.keySet());
    }

    static boolean validTopicName(String name) {
        return name != null && !name.isEmpty() && name.length() <= 249 && name.matches("[a-zA-Z0-9._-]+")
                && !name.equals(".") && !name.equals("..");
    }

    /** Returns the partition's high watermark, or -1 if unknown here. */
    public long highWatermark(String topic, int partition) {
        Partition p = partition(topic, partition);
        return p == null ? -1 : p.highWatermark();
    }

    /** Reads one partition for Fetch; null when the topic-partition is unknown. */
    public UnifiedLog.FetchData fetch(String topic, int partition, long offset, int maxBytes) throws IOException {
        return fetch(topic, partition, offset, maxBytes, -1);
    }

    /**
     * Reads one partition for a Fetch of replicaId (-1: a consumer); a follower's fetch offset is
     * its log end, which may advance the high watermark and complete parked acks=all requests.
     */
    public UnifiedLog.FetchData fetch(String topic, int partition, long offset, int maxBytes, int replicaId) throws IOException {
        Partition p = partition(topic, partition);
        if (p == null) return null;
        if (replicaId >= 0 && p.isLeader() && p.followerFetched(replicaId, offset, System.currentTimeMillis())) tryCompleteDelayed();
        UnifiedLog.FetchData d = p.read(offset, maxBytes);
        return new UnifiedLog.FetchData(p.highWatermark(), d.records);
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
        if (ps == null && cluster.replicated()) ps = topic(topic, true); // created by another broker's metadata
        if (ps == null || partition < 0 || partition >= ps.length) {
            return new PartitionResult(Errors.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, "unknown topic-partition " + topic + "-" + partition);
        }
        if (ps[partition] == null || !ps[partition].isLeader()) {
            return new PartitionResult(Errors.NOT_LEADER_OR_FOLLOWER, -1, -1, "broker " + selfId + " does not lead " + topic + "-" + partition);
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
