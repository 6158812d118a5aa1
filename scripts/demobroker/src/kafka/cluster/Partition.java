package kafka.cluster;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import kafka.log.UnifiedLog;

/**
 * A partition this broker holds a replica of. Alone (one replica) it leads and its high watermark
 * is its log end. In a replicated cluster the leader tracks each follower's fetch offset (its log
 * end, as the follower's fetches say), keeps the in-sync replicas (ISR: those caught up within
 * replica.lag.time.max.ms) and advances the high watermark to the smallest log end of the ISR;
 * acks=all produce requests wait until it passes their batches.
 */
public final class Partition {
    public final String topic;
    public final int index;
    private final UnifiedLog log;
    /** The replicas, leader first, and this broker's id. */
    public final int[] replicas;
    public final int selfId;

    // Leader state, guarded by this.
    private final Map<Integer, Long> followerEnd = new HashMap<>();
    private final Map<Integer, Long> caughtUpMs = new HashMap<>();
    private final List<Integer> isr = new ArrayList<>();
    private long highWatermark;
    // Followers: the leader's high watermark as its last fetch response gave it.
    private volatile long leaderHighWatermark;

    public Partition(String topic, int index, UnifiedLog log) {
        this(topic, index, log, new int[] {0}, 0);
    }

    public Partition(String topic, int index, UnifiedLog log, int[] replicas, int selfId) {
        this.topic = topic;
        this.index = index;
        this.log = log;
        this.replicas = replicas;
        this.selfId = selfId;
        long now = System.currentTimeMillis();
        for (int r : replicas) {
            isr.add(r);
            if (r != selfId) {
                followerEnd.put(r, 0L);
                caughtUpMs.put(r, now);
            }
        }
    }

    public boolean isLeader() {
        return replicas[0] == selfId;
    }

    public int leader() {
        return replicas[0];
    }

    public long logEndOffset() {
        return log.logEndOffset();
    }

    /** The high watermark: what every in-sync replica has (a follower: what its leader said). */
    public synchronized long highWatermark() {
        if (replicas.length == 1) return log.logEndOffset();
        if (!isLeader()) return Math.min(leaderHighWatermark, log.logEndOffset());
        return highWatermark;
    }

    // A follower's view of the ISR: what its leader's metadata said last.
    private volatile int[] leaderIsr;

    /** The ISR: the leader's own; a follower's as its leader last reported it. */
    public synchronized int[] inSyncReplicas() {
        if (!isLeader()) return leaderIsr != null ? leaderIsr : replicas;
        return isr.stream().mapToInt(Integer::intValue).toArray();
    }

    public void setLeaderIsr(int[] isr) {
        leaderIsr = isr;
    }

    public UnifiedLog.FetchData read(long offset, int maxBytes) throws IOException {
        return log.read(offset, maxBytes);
    }

    public UnifiedLog.AppendInfo appendRecordsToLeader(ByteBuffer records) throws IOException {
        UnifiedLog.AppendInfo info = log.append(records);
        if (replicas.length > 1) advance(System.currentTimeMillis());
        return info;
    }

    /** A follower appends what it fetched from its leader at its own log end. */
    public void appendAsFollower(ByteBuffer records, long leaderHw) throws IOException {
        if (records.remaining() > 0) log.append(records);
        leaderHighWatermark = leaderHw;
    }

    /**
     * The leader learns a follower's log end from its fetch; returns whether the high watermark
     * advanced (acks=all requests may be complete).
     */
    public synchronized boolean followerFetched(int replica, long fetchOffset, long nowMs) {
        if (!followerEnd.containsKey(replica)) return false;
        followerEnd.put(replica, fetchOffset);
        if (fetchOffset >= log.logEndOffset()) caughtUpMs.put(replica, nowMs);
        return advance(nowMs);
    }

    private long lagMaxMs = 10_000;

    public synchronized void setReplicaLagTimeMaxMs(long ms) {
        lagMaxMs = ms;
    }

    /** Shrinks or expands the ISR by the followers' lag, then moves the high watermark. */
    public synchronized boolean advance(long nowMs) {
        if (!isLeader() || replicas.length == 1) return false;
        long end = log.logEndOffset();
        for (Map.Entry<Integer, Long> e : followerEnd.entrySet()) {
            int r = e.getKey();
            boolean caughtUp = nowMs - caughtUpMs.get(r) <= lagMaxMs;
            if (caughtUp && !isr.contains(r) && e.getValue() >= highWatermark) isr.add(r);
            if (!caughtUp && isr.contains(r)) {
                isr.remove(Integer.valueOf(r));
                System.err.println("shrinking ISR of " + topic + "-" + index + " to " + isr + ": replica " + r + " lags");
            }
        }
        long hw = end;
        for (int r : isr) if (r != selfId) hw = Math.min(hw, followerEnd.get(r));
        if (hw > highWatermark) {
            highWatermark = hw;
            return true;
        }
        return false;
    }
}
