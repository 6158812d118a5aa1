package kafka.protocol;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Reads Kafka wire-protocol primitives from a request body. Every read is bounds-checked and
 * throws {@link InvalidRequestException} on malformed input, so a bad frame closes its own
 * connection and nothing else.
 */
public final class Reader {
    private final ByteBuffer buf;

    public Reader(ByteBuffer buf) {
        this.buf = buf;
    }

    private void need(int n) {
        if (n < 0 || buf.remaining() < n) {
            throw new InvalidRequestException("need " + n + " bytes at offset " + buf.position() + ", have " + buf.remaining());
        }
    }

    public int remaining() { return buf.remaining(); }
    public int position() { return buf.position(); }

    public byte int8() { need(1); return buf.get(); }
    public short int16() { need(2); return buf.getShort(); }
    public int int32() { need(4); return buf.getInt(); }
    public long int64() { need(8); return buf.getLong(); }
    public boolean bool() { return int8() != 0; }

    public int uvarint() {
        int value = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            byte b = int8();
            value |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidRequestException("unsigned varint longer than 5 bytes");
    }

    public String string() {
        short len = int16();
        if (len < 0) throw new InvalidRequestException("null string where a string is required");
        return utf8(len);
    }

    public String nullableString() {
        short len = int16();
        return len < 0 ? null : utf8(len);
    }

    public String compactString() {
        String s = compactNullableString();
        if (s == null) throw new InvalidRequestException("null compact string where a string is required");
        return s;
    }

    public String compactNullableString() {
        int len = uvarint() - 1;
        return len < 0 ? null : utf8(len);
    }

    private String utf8(int len) {
        need(len);
        byte[] b = new byte[len];
        buf.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    /** Returns a slice of the next len bytes, sharing the request buffer. */
    public ByteBuffer slice(int len) {
        need(len);
        ByteBuffer s = buf.slice();
        s.limit(len);
        buf.position(buf.position() + len);
        return s;
    }

    public ByteBuffer nullableBytes() {
        int len = int32();
        return len < 0 ? null : slice(len);
    }

    public ByteBuffer compactNullableBytes() {
        int len = uvarint() - 1;
        return len < 0 ? null : slice(len);
    }

    /** Reads an array length; -1 (null) is returned as -1. */
    public int arrayLength(boolean compact) {
        int n = compact ? uvarint() - 1 : int32();
        // Each element takes at least one byte: a larger count is a lie that would make us allocate.
        if (n > buf.remaining()) throw new InvalidRequestException("array of " + n + " elements in " + buf.remaining() + " bytes");
        return n;
    }

    public void uuid() { need(16); buf.position(buf.position() + 16); }

    /** Skips a tagged-field section (flexible versions): we define no tags we understand. */
    public void skipTaggedFields() {
        int n = uvarint();
        for (int i = 0; i < n; i++) {
            uvarint(); // tag
            int size = uvarint();
            need(size);
            buf.position(buf.position() + size);
        }
    }
}
