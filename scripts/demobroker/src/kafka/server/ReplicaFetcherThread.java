package kafka.server;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.List;
import kafka.cluster.Partition;
import kafka.protocol.Errors;
import kafka.protocol.Reader;

/**
 * A follower's fetcher of the partitions one leader leads, named as Kafka's
 * ({@code ReplicaFetcherThread-0-LEADER}): it learns the leader's topics from its Metadata (v1)
 * every second, creating the local replicas, and fetches them with Fetch v4 and this broker's id as
 * replica id, appending what it gets at its own log end. Its fetch offsets are how the leader knows
 * it caught up; the leader's high watermark comes back in each response.
 */
public final class ReplicaFetcherThread extends Thread {
    private final Cluster.Broker leader;
    private final int selfId;
    private final ReplicaManager replicaManager;
    private volatile boolean running = true;
    private SocketChannel ch;
    private int correlation;
    private long lastMetadata;

    public ReplicaFetcherThread(Cluster.Broker leader, int selfId, ReplicaManager replicaManager) {
        super("ReplicaFetcherThread-0-" + leader.id);
        this.leader = leader;
        this.selfId = selfId;
        this.replicaManager = replicaManager;
        setDaemon(true);
    }

    @Override
    public void run() {
        while (running) {
            try {
                if (ch == null) {
                    ch = SocketChannel.open(new InetSocketAddress(leader.host, leader.port));
                    ch.socket().setTcpNoDelay(true);
                }
                long now = System.currentTimeMillis();
                if (now - lastMetadata >= 1000) {
                    refreshTopics();
                    lastMetadata = now;
                }
                List<Partition> ps = replicaManager.followerPartitions(leader.id);
                if (ps.isEmpty()) {
                    Thread.sleep(100);
                    continue;
                }
                fetch(ps);
            } catch (InterruptedException e) {
                return;
            } catch (IOException | RuntimeException e) {
                if (running) System.err.println(getName() + ": " + e + "; reconnecting");
                close();
                try {
                    Thread.sleep(200);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    public void shutdown() {
        running = false;
        interrupt();
        close();
    }

    private void close() {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
            }
            ch = null;
        }
    }

    /** Metadata v1 for all topics: creates the local replicas of what the leader knows. */
    private void refreshTopics() throws IOException {
        kafka.protocol.Writer body = new kafka.protocol.Writer();
        body.int32(-1); // all topics
        Reader r = call((short) 3, (short) 1, body);
        int nb = r.int32();
        for (int i = 0; i < nb; i++) {
            r.int32();
            r.string();
            r.int32();
            r.nullableString();
        }
        r.int32(); // controller
        int nt = r.int32();
        for (int t = 0; t < nt; t++) {
            short err = r.int16();
            String name = r.string();
            r.bool();
            int np = r.int32();
            int[] leaders = new int[np];
            int[][] isrs = new int[np][];
            for (int p = 0; p < np; p++) {
                r.int16();
                int index = r.int32();
                int leaderId = r.int32();
                int n = r.int32();
                for (int k = 0; k < n; k++) r.int32();
                int[] isr = new int[r.int32()];
                for (int k = 0; k < isr.length; k++) isr[k] = r.int32();
                if (index >= 0 && index < np) {
                    leaders[index] = leaderId;
                    isrs[index] = isr;
                }
            }
            if (err != Errors.NONE) continue;
            replicaManager.topic(name, true);
            // The ISR of what this leader leads, for this broker's own metadata answers.
            for (int p = 0; p < np; p++) {
                Partition local = replicaManager.partition(name, p);
                if (local != null && leaders[p] == leader.id && !local.isLeader() && isrs[p] != null) local.setLeaderIsr(isrs[p]);
            }
        }
    }

    /** Fetch v4 from each partition's log end, waiting up to 500 ms for data. */
    private void fetch(List<Partition> ps) throws IOException {
        kafka.protocol.Writer body = new kafka.protocol.Writer();
        body.int32(selfId).int32(500).int32(1).int32(8 << 20).int8(0);
        body.int32(ps.size());
        for (Partition p : ps) {
            body.string(p.topic, false).int32(1).int32(p.index).int64(p.logEndOffset()).int32(1 << 20);
        }
        Reader r = call((short) 1, (short) 4, body);
        r.int32(); // throttle
        int nt = r.int32();
        for (int t = 0; t < nt; t++) {
            String topic = r.string();
            int np = r.int32();
            for (int i = 0; i < np; i++) {
                int index = r.int32();
                short err = r.int16();
                long hw = r.int64();
                r.int64(); // last stable offset
                int aborted = r.int32();
                for (int a = 0; a < aborted; a++) {
                    r.int64();
                    r.int64();
                }
                ByteBuffer records = r.nullableBytes();
                Partition p = replicaManager.partition(topic, index);
                if (p == null || err != Errors.NONE) continue;
                p.appendAsFollower(records == null ? ByteBuffer.allocate(0) : records, hw);
            }
        }
    }

    /** Sends one request (header v1) and returns a reader of its response's body. */
    private Reader call(short apiKey, short version, kafka.protocol.Writer body) throws IOException {
        byte[] client = "lockscope-demo-replica".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        ByteBuffer b = body.frame(); // [size][body]
        int bodyLen = b.remaining() - 4;
        b.position(4);
        ByteBuffer out = ByteBuffer.allocate(4 + 2 + 2 + 4 + 2 + client.length + bodyLen);
        int id = ++correlation;
        out.putInt(out.capacity() - 4).putShort(apiKey).putShort(version).putInt(id)
           .putShort((short) client.length).put(client).put(b);
        out.flip();
        while (out.hasRemaining()) ch.write(out);
        ByteBuffer size = ByteBuffer.allocate(4);
        readFully(size);
        ByteBuffer resp = ByteBuffer.allocate(size.flip().getInt());
        readFully(resp);
        resp.flip();
        if (resp.getInt() != id) throw new IOException("response to another request");
        return new Reader(resp.slice());
    }

    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) throw new EOFException("leader " + leader.id + " closed the connection");
        }
    }
}
