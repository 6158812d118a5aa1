package kafka.protocol;

/** Kafka error codes used by the demo broker. */
public final class Errors {
    public static final short NONE = 0;
    public static final short OFFSET_OUT_OF_RANGE = 1;
    public static final short CORRUPT_MESSAGE = 2;
    public static final short UNKNOWN_TOPIC_OR_PARTITION = 3;
    public static final short NOT_LEADER_OR_FOLLOWER = 6;
    public static final short REQUEST_TIMED_OUT = 7;
    public static final short NOT_ENOUGH_REPLICAS = 19;
    public static final short INVALID_REQUIRED_ACKS = 21;
    public static final short UNSUPPORTED_VERSION = 35;
    public static final short INVALID_REQUEST = 42;

    private Errors() {}
}
