package kafka.protocol;

/** The APIs the demo broker serves, with the version ranges it advertises. */
public enum ApiKeys {
    PRODUCE(0, 3, 9, 9),
    // Fetch is served so that consumers can read back, and because librdkafka writes record
    // batches v2 only to brokers that advertise Fetch v4 or later.
    FETCH(1, 4, 11, 12),
    LIST_OFFSETS(2, 1, 5, 6),
    METADATA(3, 0, 12, 9),
    API_VERSIONS(18, 0, 3, 3);

    public final short id;
    public final short min;
    public final short max;
    /** First flexible (tagged-fields, compact encodings, request header v2) version. */
    public final short firstFlexible;

    ApiKeys(int id, int min, int max, int firstFlexible) {
        this.id = (short) id;
        this.min = (short) min;
        this.max = (short) max;
        this.firstFlexible = (short) firstFlexible;
    }

    public boolean flexible(short version) { return version >= firstFlexible; }
    public boolean supports(short version) { return version >= min && version <= max; }

    public static ApiKeys forId(short id) {
        for (ApiKeys k : values()) if (k.id == id) return k;
        return null;
    }
}
