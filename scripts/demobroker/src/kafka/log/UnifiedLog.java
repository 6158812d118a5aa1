package kafka.log;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;
import java.util.zip.Checksum;
import kafka.protocol.InvalidRequestException;

/**
 * The log of one topic-partition. As in Kafka, {@link #append} assigns offsets and writes under
 * the log's monitor ({@code synchronized (lock)}), so a write that stalls in the kernel — say on
 * an ext4 journal commit — makes every other producer to this partition wait for the monitor.
 */
public final class UnifiedLog {
    // Record batch v2 layout (KIP-98): offsets of the fields we read or rewrite.
    private static final int BASE_OFFSET = 0;
    private static final int BATCH_LENGTH = 8;
    private static final int MAGIC = 16;
    private static final int CRC = 17;
    private static final int ATTRIBUTES = 21;
    private static final int LAST_OFFSET_DELTA = 23;
    private static final int RECORDS_COUNT = 57;
    private static final int BATCH_HEADER = 61;
    // Legacy (v0/v1) message sets share the offset and length prefix; magic sits at 16 too.
    private static final int LEGACY_CRC = 12;
    private static final int LEGACY_MAGIC = 16;
    private static final int LEGACY_HEADER = 26;

    /** The result of one append. */
    public static final class AppendInfo {
        public final long firstOffset;
        public final int records;
        public final long appendTimeMs;

        AppendInfo(long firstOffset, int records, long appendTimeMs) {
            this.firstOffset = firstOffset;
            this.records = records;
            this.appendTimeMs = appendTimeMs;
        }
    }

    private final Object lock = new Object();
    private final File dir;
    private final LogConfig config;
    private LogSegment active;
    // Every segment by base offset, for reads; the active one is the last.
    private final java.util.concurrent.ConcurrentSkipListMap<Long, LogSegment> segments = new java.util.concurrent.ConcurrentSkipListMap<>();
    private long nextOffset;
    private long appendsSinceFlush;
    private long appends;
    private volatile long recoveryPoint;

    UnifiedLog(File dir, LogConfig config) throws IOException {
        this.dir = dir;
        this.config = config;
        if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create log directory " + dir);
        // The demo starts every run afresh: old segments would only confuse offsets.
        File[] old = dir.listFiles((d, n) -> n.endsWith(".log"));
        if (old != null) for (File f : old) f.delete();
        this.active = new LogSegment(dir, 0);
        segments.put(0L, active);
    }

    public File dir() { return dir; }

    public long logEndOffset() {
        synchronized (lock) {
            return nextOffset;
        }
    }

    long recoveryPoint() { return recoveryPoint; }

    /**
     * Validates the batches (magic 2, CRC-32C over attributes..end), assigns offsets and writes
     * them, all under the log's lock, fsyncing inside the lock every {@code flushMessages} appends
     * when configured (Kafka's flush.messages).
     */
    public AppendInfo append(ByteBuffer records) throws IOException {
        int count = validate(records);
        synchronized (lock) {
            long first = nextOffset;
            long offset = nextOffset;
            for (int pos = 0; pos < records.limit(); ) {
                int len = records.getInt(pos + BATCH_LENGTH) + 12;
                records.putLong(pos + BASE_OFFSET, offset);
                // A v2 batch spans lastOffsetDelta+1 offsets; a v0/v1 message (same offset and
                // length prefix) takes one.
                offset += records.get(pos + MAGIC) == 2 ? records.getInt(pos + LAST_OFFSET_DELTA) + 1L : 1L;
                pos += len;
            }
            if (active.size() + records.remaining() > config.segmentBytes && active.size() > 0) roll();
            active.append(records.duplicate(), first);
            nextOffset = offset;
            appends++;
            if (config.stallMs > 0 && config.stallEvery > 0 && appends % config.stallEvery == 0 && kafka.server.Faults.active()) {
                stall(config.stallMs);
            }
            if (config.flushMessages > 0 && ++appendsSinceFlush >= config.flushMessages) {
                active.flush();
                appendsSinceFlush = 0;
                recoveryPoint = nextOffset;
            }
            return new AppendInfo(first, count, System.currentTimeMillis());
        }
    }

    /** The stall fault: the lock holder sleeps, so waiters queue on the monitor with a known cause. */
    private static void stall(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void roll() throws IOException {
        active.flush();
        active = new LogSegment(dir, nextOffset);
        segments.put(nextOffset, active);
    }

    /** Flushes the active segment (the scheduler's periodic flush), outside the append lock as Kafka does. */
    void flush() throws IOException {
        LogSegment segment;
        long end;
        synchronized (lock) {
            segment = active;
            end = nextOffset;
        }
        segment.flush();
        recoveryPoint = Math.max(recoveryPoint, end);
    }

    /** What a fetch of one partition returns. */
    public static final class FetchData {
        public final long highWatermark;
        public final ByteBuffer records; // null: fetch offset out of range

        public FetchData(long highWatermark, ByteBuffer records) {
            this.highWatermark = highWatermark;
            this.records = records;
        }
    }

    /**
     * Reads whole batches from fetchOffset on, up to maxBytes but at least one batch (KIP-74), for
     * Fetch. Offsets at or past the end give an empty read; below 0 or past the end, null records.
     * Only bytes written before the call are read, so a concurrent append is never seen half-done.
     */
    public FetchData read(long fetchOffset, int maxBytes) throws IOException {
        long hw;
        long end;
        Map.Entry<Long, LogSegment> entry;
        synchronized (lock) {
            hw = nextOffset;
            end = active.size();
            entry = segments.floorEntry(fetchOffset);
        }
        if (fetchOffset < 0 || fetchOffset > hw || entry == null) return new FetchData(hw, null);
        ByteBuffer header = ByteBuffer.allocate(27);
        while (entry != null) {
            LogSegment seg = entry.getValue();
            long limit = seg.baseOffset == active.baseOffset ? end : seg.size();
            long pos = seg.lookup(fetchOffset);
            long start = -1;
            while (pos + 27 <= limit) {
                header.clear();
                seg.read(header, pos);
                long base = header.getLong(BASE_OFFSET);
                int len = header.getInt(BATCH_LENGTH) + 12;
                long last = header.get(MAGIC) == 2 ? base + header.getInt(LAST_OFFSET_DELTA) : base;
                if (start < 0 && last >= fetchOffset) start = pos;
                if (start >= 0 && pos > start && pos + len - start > maxBytes) break;
                pos += len;
            }
            if (start >= 0) {
                ByteBuffer out = ByteBuffer.allocate((int) (pos - start));
                seg.read(out, start);
                out.flip();
                return new FetchData(hw, out);
            }
            entry = segments.higherEntry(entry.getKey());
        }
        return new FetchData(hw, ByteBuffer.allocate(0));
    }

    void close() throws IOException {
        synchronized (lock) {
            for (LogSegment s : segments.values()) s.close();
        }
    }

    /**
     * Returns the number of records in a well-formed sequence of record batches (v2, checked with
     * CRC-32C over attributes..end) or of legacy v0/v1 messages (librdkafka sends those when the
     * broker advertises no Fetch API; checked with CRC-32 over magic..end), or throws.
     */
    static int validate(ByteBuffer records) {
        int count = 0;
        int limit = records.limit();
        if (limit == 0) throw new InvalidRequestException("empty record set");
        for (int pos = 0; pos < limit; ) {
            if (limit - pos < LEGACY_HEADER) throw new CorruptRecordException("record header truncated at " + pos + " of " + limit);
            int len = records.getInt(pos + BATCH_LENGTH) + 12;
            byte magic = records.get(pos + MAGIC);
            if (magic == 2) {
                if (len < BATCH_HEADER || len > limit - pos) throw new CorruptRecordException("batch length " + len + " at " + pos);
                if (crc(new CRC32C(), records, pos + ATTRIBUTES, pos + len) != records.getInt(pos + CRC)) {
                    throw new CorruptRecordException("CRC mismatch in batch at " + pos);
                }
                int n = records.getInt(pos + RECORDS_COUNT);
                if (n < 0) throw new CorruptRecordException("negative record count");
                count += n;
            } else if (magic == 0 || magic == 1) {
                if (len < LEGACY_HEADER || len > limit - pos) throw new CorruptRecordException("message length " + len + " at " + pos);
                // Legacy layout: offset, size, crc, magic, attributes, [timestamp], key, value.
                if (crc(new CRC32(), records, pos + LEGACY_MAGIC, pos + len) != records.getInt(pos + LEGACY_CRC)) {
                    throw new CorruptRecordException("CRC mismatch in message at " + pos);
                }
                count++;
            } else {
                throw new CorruptRecordException("unknown record magic " + magic + " at " + pos);
            }
            pos += len;
        }
        return count;
    }

    private static int crc(Checksum c, ByteBuffer b, int from, int to) {
        ByteBuffer d = b.duplicate();
        d.position(from).limit(to);
        c.update(d);
        return (int) c.getValue();
    }

    /** A batch that fails validation: answered with CORRUPT_MESSAGE, the connection stays. */
    public static final class CorruptRecordException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CorruptRecordException(String message) { super(message); }
    }
}
