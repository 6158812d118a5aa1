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
    private volatile long size;
    // Sparse offset index (Kafka's index.interval.bytes = 4096): first offset of a batch and its
    // file position, one entry per 4 KiB written. Guarded by the log's lock for writes; readers
    // take a consistent prefix through indexEntries.
    private long[] indexOffsets = new long[16];
    private long[] indexPositions = new long[16];
    private volatile int indexEntries;
    private long lastIndexedPosition = -INDEX_INTERVAL;
    private static final long INDEX_INTERVAL = 4096;

    LogSegment(File dir, long baseOffset) throws IOException {
        this.baseOffset = baseOffset;
        this.file = new File(dir, String.format("%020d.log", baseOffset));
        this.channel = FileChannel.open(file.toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.READ);
        this.size = channel.size();
    }

    long size() { return size; }

    /** Appends batches at the end of the segment with a positional write (FileChannel.write). */
    void append(ByteBuffer records, long firstOffset) throws IOException {
        if (size - lastIndexedPosition >= INDEX_INTERVAL) {
            int n = indexEntries;
            if (n == indexOffsets.length) {
                indexOffsets = java.util.Arrays.copyOf(indexOffsets, n * 2);
                indexPositions = java.util.Arrays.copyOf(indexPositions, n * 2);
            }
            indexOffsets[n] = firstOffset;
            indexPositions[n] = size;
            lastIndexedPosition = size;
            indexEntries = n + 1;
        }
        while (records.hasRemaining()) {
            size += channel.write(records, size);
        }
    }

    /** Returns the file position of the last indexed batch starting at or before offset. */
    long lookup(long offset) {
        int n = indexEntries;
        long[] offs = indexOffsets, poss = indexPositions;
        long pos = 0;
        for (int lo = 0, hi = n - 1; lo <= hi; ) {
            int mid = (lo + hi) >>> 1;
            if (offs[mid] <= offset) { pos = poss[mid]; lo = mid + 1; } else { hi = mid - 1; }
        }
        return pos;
    }

    /** Reads exactly dst.remaining() bytes at position (a positional read: no shared file pointer). */
    void read(ByteBuffer dst, long position) throws IOException {
        while (dst.hasRemaining()) {
            int n = channel.read(dst, position);
            if (n < 0) throw new IOException("segment " + file + " ends before position " + position);
            position += n;
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
