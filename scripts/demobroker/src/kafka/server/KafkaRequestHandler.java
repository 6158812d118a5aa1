package kafka.server;

import kafka.network.RequestChannel;

/** A request-handler thread: takes requests off the channel and runs them through KafkaApis. */
public final class KafkaRequestHandler implements Runnable {
    private final RequestChannel channel;
    private final KafkaApis apis;
    private volatile boolean running = true;

    public KafkaRequestHandler(RequestChannel channel, KafkaApis apis) {
        this.channel = channel;
        this.apis = apis;
    }

    @Override
    public void run() {
        while (running) {
            RequestChannel.Request req;
            try {
                req = channel.receiveRequest(300);
            } catch (InterruptedException e) {
                return;
            }
            if (req == null) continue;
            req.dequeueNanos = System.nanoTime();
            RequestChannel.Response resp = apis.handle(req);
            req.localDoneNanos = System.nanoTime();
            req.delayed = resp == null;
            if (resp != null) channel.sendResponse(resp); // null: a delayed fetch answers later
        }
    }

    public void shutdown() {
        running = false;
    }
}
