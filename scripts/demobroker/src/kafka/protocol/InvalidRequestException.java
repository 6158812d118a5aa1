package kafka.protocol;

/** A request that does not parse; its connection is closed, as Kafka does. */
public final class InvalidRequestException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public InvalidRequestException(String message) { super(message); }
}
