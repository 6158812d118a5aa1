package kafka.network;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * Kafka's socket server in small: one acceptor thread hands new connections round-robin to
 * network (processor) threads, named as Kafka names them so that profiles read the same.
 */
public final class SocketServer {
    private static final String LISTENER = "ListenerName(PLAINTEXT)-PLAINTEXT";

    private final ServerSocketChannel server;
    private final List<Processor> processors = new ArrayList<>();
    private final Thread acceptor;
    private volatile boolean running = true;

    public SocketServer(String host, int port, int brokerId, int networkThreads, int maxRequestBytes,
                        RequestChannel channel) throws IOException {
        server = ServerSocketChannel.open();
        server.setOption(java.net.StandardSocketOptions.SO_REUSEADDR, true);
        server.bind(new InetSocketAddress(host, port), 128);
        for (int i = 0; i < networkThreads; i++) {
            Processor p = new Processor(i, maxRequestBytes, channel);
            processors.add(p);
            Thread t = new Thread(p, "data-plane-kafka-network-thread-" + brokerId + "-" + LISTENER + "-" + i);
            t.setDaemon(true);
            t.start();
        }
        acceptor = new Thread(this::acceptLoop, "data-plane-kafka-socket-acceptor-" + LISTENER + "-" + boundPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public int boundPort() {
        try {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        } catch (IOException e) {
            return -1;
        }
    }

    private void acceptLoop() {
        int next = 0;
        try (Selector selector = Selector.open()) {
            server.configureBlocking(false);
            server.register(selector, SelectionKey.OP_ACCEPT);
            while (running) {
                if (selector.select(500) == 0) continue;
                selector.selectedKeys().clear();
                SocketChannel ch;
                while ((ch = server.accept()) != null) {
                    ch.configureBlocking(false);
                    ch.socket().setTcpNoDelay(true);
                    processors.get(next++ % processors.size()).accept(ch);
                }
            }
        } catch (IOException e) {
            if (running) System.err.println("acceptor: " + e);
        }
    }

    public void shutdown() {
        running = false;
        try {
            server.close();
        } catch (IOException ignored) {
        }
        for (Processor p : processors) p.shutdown();
    }
}
