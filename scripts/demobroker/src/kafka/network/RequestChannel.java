package kafka.network;

import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import kafka.protocol.RequestHeader;

/**
 * The queue between network threads and request-handler threads, as in Kafka: a network thread
 * reads a whole request, mutes its connection and queues it; a handler takes it, and its answer
 * goes back to the same network thread, which sends it and unmutes the connection. Responses on a
 * connection therefore leave in request order.
 */
public final class RequestChannel {
    /** One request read off a connection. */
    public static final class Request {
        public final Processor processor;
        public final String connectionId;
        public final RequestHeader header;
        public final ByteBuffer body;
        public final long arrivalNanos;
        // When the request's phases ended (System.nanoTime), for the request log: taken off the
        // queue by a handler, handled (the local part), its response queued for the network
        // thread, picked up by it.
        public volatile long dequeueNanos, localDoneNanos, responseQueuedNanos, responseDequeuedNanos;
        // delayed: the handler parked the request (a purgatory answers it later).
        public volatile boolean delayed;

        Request(Processor processor, String connectionId, RequestHeader header, ByteBuffer body, long arrivalNanos) {
            this.processor = processor;
            this.connectionId = connectionId;
            this.header = header;
            this.body = body;
            this.arrivalNanos = arrivalNanos;
        }
    }

    /** What a handler tells the network thread to do with a connection. */
    public static final class Response {
        public enum Action { SEND, NO_OP, CLOSE }

        public final Request request;
        public final Action action;
        public final ByteBuffer frame;

        private Response(Request request, Action action, ByteBuffer frame) {
            this.request = request;
            this.action = action;
            this.frame = frame;
        }

        public static Response send(Request r, ByteBuffer frame) { return new Response(r, Action.SEND, frame); }
        /** acks=0 produce: nothing is sent, the connection is unmuted. */
        public static Response noOp(Request r) { return new Response(r, Action.NO_OP, null); }
        public static Response close(Request r) { return new Response(r, Action.CLOSE, null); }
    }

    private final BlockingQueue<Request> requests;

    public RequestChannel(int queueSize) {
        requests = new ArrayBlockingQueue<>(queueSize);
    }

    void sendRequest(Request r) throws InterruptedException {
        requests.put(r);
    }

    public Request receiveRequest(long timeoutMs) throws InterruptedException {
        return requests.poll(timeoutMs, TimeUnit.MILLISECONDS);
    }

    public void sendResponse(Response r) {
        r.request.responseQueuedNanos = System.nanoTime();
        r.request.processor.enqueueResponse(r);
    }
}
