package kafka.protocol;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** Builds a Kafka response frame (size prefix filled in by {@link #frame}). */
public final class Writer {
    private byte[] b = new byte[256];
    private int n = 4; // room for the frame size

    private void grow(int more) {
        if (n + more > b.length) b = Arrays.copyOf(b, Math.max(b.length * 2, n + more));
    }

    public Writer int8(int v) { grow(1); b[n++] = (byte) v; return this; }
    public Writer int16(int v) { grow(2); b[n++] = (byte) (v >> 8); b[n++] = (byte) v; return this; }
    public Writer int32(int v) { grow(4); for (int s = 24; s >= 0; s -= 8) b[n++] = (byte) (v >> s); return this; }
    public Writer int64(long v) { grow(8); for (int s = 56; s >= 0; s -= 8) b[n++] = (byte) (v >> s); return this; }
    public Writer bool(boolean v) { return int8(v ? 1 : 0); }

    public Writer uvarint(int v) {
        while ((v & ~0x7f) != 0) { int8((v & 0x7f) | 0x80); v >>>= 7; }
        return int8(v);
    }

    public Writer string(String s, boolean compact) {
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        if (compact) uvarint(u.length + 1); else int16(u.length);
        grow(u.length);
        System.arraycopy(u, 0, b, n, u.length);
        n += u.length;
        return this;
    }

    public Writer nullableString(String s, boolean compact) {
        if (s != null) return string(s, compact);
        return compact ? uvarint(0) : int16(-1);
    }

    /** Writes int32-length-prefixed bytes (the buffer's remaining bytes). */
    public Writer bytes(ByteBuffer src) {
        ByteBuffer d = src.duplicate();
        int len = d.remaining();
        int32(len);
        grow(len);
        d.get(b, n, len);
        n += len;
        return this;
    }

    public Writer arrayLength(int len, boolean compact) { return compact ? uvarint(len + 1) : int32(len); }

    public Writer emptyTaggedFields(boolean flexible) { return flexible ? uvarint(0) : this; }

    public Writer uuidZero() { grow(16); n += 16; return this; }

    /** Returns the finished frame: the 4-byte size followed by the body. */
    public ByteBuffer frame() {
        int size = n - 4;
        b[0] = (byte) (size >> 24); b[1] = (byte) (size >> 16); b[2] = (byte) (size >> 8); b[3] = (byte) size;
        return ByteBuffer.wrap(b, 0, n);
    }
}
