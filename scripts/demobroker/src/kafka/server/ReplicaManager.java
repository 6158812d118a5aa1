package kafka.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
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

    public PartitionResult appendRecords(String topic, int partition, ByteBuffer records) throws IOException {
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
