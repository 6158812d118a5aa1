package kafka.log;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;

/** One segment file, {@code <baseOffset>.log} zero-padded to 20 digits as Kafka names them. */
final class LogSegment {
    final long baseOffset;
    final File file;
    private final FileChannel channel;
    private long size;

    LogSegment(File dir, long baseOffset) throws IOException {
        this.baseOffset = baseOffset;
        this.file = new File(dir, String.format("%020d.log", baseOffset));
        this.channel = FileChannel.open(file.toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.READ);
        this.size = channel.size();
    }

    long size() { return size; }

    /** Appends batches at the end of the segment with a positional write (FileChannel.write). */
    void append(ByteBuffer records) throws IOException {
        while (records.hasRemaining()) {
            size += channel.write(records, size);
        }
    }

    /** fsync: the file's data and metadata reach the disk (and, on ext4, a journal commit). */
    void flush() throws IOException {
        channel.force(true);
    }

    void close() throws IOException {
        channel.close();
    }
}
