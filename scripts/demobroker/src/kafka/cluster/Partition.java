package kafka.cluster;

import java.io.IOException;
import java.nio.ByteBuffer;
import kafka.log.UnifiedLog;

/** A partition this broker leads (the only replica: acks=-1 and acks=1 behave alike). */
public final class Partition {
    public final String topic;
    public final int index;
    private final UnifiedLog log;

    public Partition(String topic, int index, UnifiedLog log) {
        this.topic = topic;
        this.index = index;
        this.log = log;
    }

    public long logEndOffset() {
        return log.logEndOffset();
    }

    public UnifiedLog.FetchData read(long offset, int maxBytes) throws IOException {
        return log.read(offset, maxBytes);
    }

    public UnifiedLog.AppendInfo appendRecordsToLeader(ByteBuffer records) throws IOException {
        return log.append(records);
    }
}
