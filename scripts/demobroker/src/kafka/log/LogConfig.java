package kafka.log;

/** Per-log settings (Kafka's segment.bytes and flush.messages) plus the demo's stall fault. */
public final class LogConfig {
    public final long segmentBytes;
    public final long flushMessages;
    public final long stallMs;
    public final long stallEvery;

    public LogConfig(long segmentBytes, long flushMessages, long stallMs, long stallEvery) {
        this.segmentBytes = segmentBytes;
        this.flushMessages = flushMessages;
        this.stallMs = stallMs;
        this.stallEvery = stallEvery;
    }
}
