package kafka.network;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;

/**
 * Kafka's request log (logger kafka.request.logger at DEBUG, the JSON form of Kafka 2.8+): a line
 * per completed request, written when its response has been sent, with the request's phases as
 * Kafka measures them: requestQueueTimeMs (in the request queue, until a handler took it),
 * localTimeMs (the handler's own work: for a produce request, the append), remoteTimeMs (parked in
 * a purgatory: an acks=all produce waiting for the followers), responseQueueTimeMs (until the
 * network thread picked the response up) and sendTimeMs (writing it to the socket). Off unless
 * {@link #open} was called.
 */
public final class RequestLog {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss,SSS");
    private static BufferedWriter out;

    private RequestLog() {}

    /**
     * Starts logging to file. Every line is flushed as it is written, as log4j's appenders do by
     * default (immediateFlush), so the log is whole when read at the end of a capture.
     */
    public static synchronized void open(String file) throws IOException {
        out = Files.newBufferedWriter(Path.of(file), StandardCharsets.UTF_8);
    }

    /** Logs a request whose response left at doneNanos. */
    static void completed(RequestChannel.Request r, long doneNanos) {
        if (out == null) return;
        long arrival = r.arrivalNanos;
        long dequeue = nz(r.dequeueNanos, arrival);
        long local = nz(r.localDoneNanos, dequeue);
        long queued = nz(r.responseQueuedNanos, local);
        long picked = nz(r.responseDequeuedNanos, queued);
        // A delayed response (an acks=all produce or a fetch parked in a purgatory) is queued
        // after the handler finished: the wait between is the remote time.
        long remote = r.delayed ? Math.max(0, queued - local) : 0;
        long localEnd = r.delayed ? Math.min(local, queued) : queued;
        String[] c = r.connectionId.replace("/", "").split("-");
        String conn = c.length >= 4 ? c[0] + "-" + c[1] + "-" + c[3] : r.connectionId;
        String line = String.format(java.util.Locale.ROOT,
                "[%s] DEBUG Completed request:{\"isForwarded\":false,\"requestHeader\":{\"requestApiKey\":%d,\"requestApiVersion\":%d,"
                        + "\"correlationId\":%d,\"clientId\":%s,\"requestApiKeyName\":\"%s\"},\"request\":{},\"response\":{},"
                        + "\"connection\":\"%s\",\"totalTimeMs\":%.3f,\"requestQueueTimeMs\":%.3f,\"localTimeMs\":%.3f,"
                        + "\"remoteTimeMs\":%.3f,\"throttleTimeMs\":0,\"responseQueueTimeMs\":%.3f,\"sendTimeMs\":%.3f,"
                        + "\"securityProtocol\":\"PLAINTEXT\",\"principal\":\"User:ANONYMOUS\",\"listener\":\"PLAINTEXT\"} (kafka.request.logger)\n",
                LocalDateTime.now().format(TIME), r.header.apiKey, r.header.apiVersion, r.header.correlationId,
                quote(r.header.clientId), r.header.api != null ? r.header.api.name() : "UNKNOWN", conn,
                ms(doneNanos - arrival), ms(dequeue - arrival), ms(localEnd - dequeue), ms(remote), ms(picked - queued), ms(doneNanos - picked));
        synchronized (RequestLog.class) {
            if (out == null) return;
            try {
                out.write(line);
                out.flush();
            } catch (IOException e) {
                System.err.println("request log: " + e);
                out = null;
            }
        }
    }

    private static long nz(long v, long fallback) {
        return v != 0 ? v : fallback;
    }

    private static double ms(long nanos) {
        return Math.max(0, nanos) / 1e6;
    }

    private static String quote(String s) {
        if (s == null) return "null";
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
