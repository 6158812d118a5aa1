package kafka.network;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.Iterator;
import java.util.concurrent.ConcurrentLinkedQueue;
import kafka.protocol.InvalidRequestException;
import kafka.protocol.Reader;
import kafka.protocol.RequestHeader;

/**
 * A network thread: reads size-prefixed frames, parses the request header, mutes the connection
 * and queues the request; sends responses and unmutes. A malformed frame closes its connection.
 */
public final class Processor implements Runnable {
    private final int id;
    private final int maxRequestBytes;
    private final RequestChannel channel;
    private final Selector selector;
    private final ConcurrentLinkedQueue<SocketChannel> newConnections = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<RequestChannel.Response> responses = new ConcurrentLinkedQueue<>();
    private volatile boolean running = true;
    private long connectionCounter;

    /** Per-connection read and write state. */
    private static final class Connection {
        final String id;
        final ByteBuffer size = ByteBuffer.allocate(4);
        ByteBuffer payload;
        ByteBuffer sending;
        RequestChannel.Request sendingFor; // the request whose response is being sent

        Connection(String id) { this.id = id; }
    }

    Processor(int id, int maxRequestBytes, RequestChannel channel) throws IOException {
        this.id = id;
        this.maxRequestBytes = maxRequestBytes;
        this.channel = channel;
        this.selector = Selector.open();
    }

    void accept(SocketChannel ch) {
        newConnections.add(ch);
        selector.wakeup();
    }

    void enqueueResponse(RequestChannel.Response r) {
        responses.add(r);
        selector.wakeup();
    }

    void shutdown() {
        running = false;
        selector.wakeup();
    }

    @Override
    public void run() {
        while (running) {
            try {
                registerNewConnections();
                processResponses();
                selector.select(300);
                Iterator<SelectionKey> it = selector.selectedKeys().iterator();
                while (it.hasNext()) {
                    SelectionKey key = it.next();
                    it.remove();
                    handle(key);
                }
            } catch (IOException e) {
                System.err.println("network thread " + id + ": " + e);
            }
        }
        for (SelectionKey k : selector.keys()) close(k);
        try {
            selector.close();
        } catch (IOException ignored) {
        }
    }

    private void registerNewConnections() throws IOException {
        SocketChannel ch;
        while ((ch = newConnections.poll()) != null) {
            String cid = ch.getLocalAddress() + "-" + ch.getRemoteAddress() + "-" + id + "-" + (connectionCounter++);
            ch.register(selector, SelectionKey.OP_READ, new Connection(cid));
        }
    }

    private void processResponses() {
        RequestChannel.Response r;
        while ((r = responses.poll()) != null) {
            SelectionKey key = findKey(r.request.connectionId);
            if (key == null) continue; // the client went away meanwhile
            Connection c = (Connection) key.attachment();
            switch (r.action) {
                case SEND:
                    c.sending = r.frame;
                    c.sendingFor = r.request;
                    r.request.responseDequeuedNanos = System.nanoTime();
                    key.interestOps(SelectionKey.OP_WRITE);
                    break;
                case NO_OP:
                    r.request.responseDequeuedNanos = System.nanoTime();
                    RequestLog.completed(r.request, System.nanoTime());
                    key.interestOps(SelectionKey.OP_READ);
                    break;
                case CLOSE:
                    close(key);
                    break;
            }
        }
    }

    private SelectionKey findKey(String connectionId) {
        // A handful of connections per thread: a scan is cheaper than keeping a second index in step.
        for (SelectionKey k : selector.keys()) {
            if (k.isValid() && ((Connection) k.attachment()).id.equals(connectionId)) return k;
        }
        return null;
    }

    private void handle(SelectionKey key) {
        if (!key.isValid()) return;
        Connection c = (Connection) key.attachment();
        SocketChannel ch = (SocketChannel) key.channel();
        try {
            if (key.isWritable()) {
                ch.write(c.sending);
                if (!c.sending.hasRemaining()) {
                    c.sending = null;
                    if (c.sendingFor != null) RequestLog.completed(c.sendingFor, System.nanoTime());
                    c.sendingFor = null;
                    key.interestOps(SelectionKey.OP_READ);
                }
                return;
            }
            if (!key.isReadable()) return;
            if (c.payload == null) {
                if (ch.read(c.size) < 0) { close(key); return; }
                if (c.size.hasRemaining()) return;
                c.size.flip();
                int size = c.size.getInt();
                c.size.clear();
                if (size < 8 || size > maxRequestBytes) {
                    System.err.println("closing " + c.id + ": invalid frame size " + size + " (max " + maxRequestBytes + ")");
                    close(key);
                    return;
                }
                c.payload = ByteBuffer.allocate(size);
            }
            if (ch.read(c.payload) < 0) { close(key); return; }
            if (c.payload.hasRemaining()) return;
            ByteBuffer frame = c.payload;
            c.payload = null;
            frame.flip();
            long arrival = System.nanoTime();
            RequestHeader header;
            try {
                header = RequestHeader.parse(new Reader(frame));
            } catch (InvalidRequestException e) {
                System.err.println("closing " + c.id + ": malformed request header: " + e.getMessage());
                close(key);
                return;
            }
            if (header.api == null) {
                System.err.println("closing " + c.id + ": unsupported API key " + header.apiKey + " (" + header + ")");
                close(key);
                return;
            }
            // Mute until this request is answered, so responses leave in request order.
            key.interestOps(0);
            channel.sendRequest(new RequestChannel.Request(this, c.id, header, frame.slice(), arrival));
        } catch (IOException e) {
            close(key);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            running = false;
        }
    }

    private static void close(SelectionKey key) {
        key.cancel();
        try {
            key.channel().close();
        } catch (IOException ignored) {
        }
    }
}
