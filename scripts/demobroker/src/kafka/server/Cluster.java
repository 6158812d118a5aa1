package kafka.server;

import java.util.ArrayList;
import java.util.List;

/**
 * The brokers of a replicated demo cluster, as {@code --cluster} lists them, and where each
 * partition's replicas are: every broker computes the same assignment (no controller), the leader
 * first, as Kafka's replica assignment puts the preferred leader first.
 */
public final class Cluster {
    /** One broker. */
    public static final class Broker {
        public final int id;
        public final String host;
        public final int port;

        Broker(int id, String host, int port) {
            this.id = id;
            this.host = host;
            this.port = port;
        }
    }

    public final List<Broker> brokers;
    private final int replicationFactor;

    private Cluster(List<Broker> brokers, int replicationFactor) {
        this.brokers = brokers;
        this.replicationFactor = Math.min(replicationFactor, brokers.size());
    }

    /** A cluster of this broker alone. */
    public static Cluster single(int id, String host, int port) {
        return new Cluster(List.of(new Broker(id, host, port)), 1);
    }

    /** Parses {@code ID@HOST:PORT,...}, which must list selfId. */
    public static Cluster parse(String spec, int selfId, int replicationFactor) {
        List<Broker> out = new ArrayList<>();
        boolean self = false;
        for (String b : spec.split(",")) {
            int at = b.indexOf('@'), colon = b.lastIndexOf(':');
            if (at <= 0 || colon < at) throw new IllegalArgumentException("--cluster: want ID@HOST:PORT, got " + b);
            int id = Integer.parseInt(b.substring(0, at));
            for (Broker o : out) if (o.id == id) throw new IllegalArgumentException("--cluster: broker id " + id + " twice");
            out.add(new Broker(id, b.substring(at + 1, colon), Integer.parseInt(b.substring(colon + 1))));
            self |= id == selfId;
        }
        if (!self) throw new IllegalArgumentException("--cluster does not list this broker (--broker-id=" + selfId + ")");
        out.sort((x, y) -> Integer.compare(x.id, y.id));
        return new Cluster(out, replicationFactor);
    }

    public boolean replicated() {
        return brokers.size() > 1;
    }

    public Broker broker(int id) {
        for (Broker b : brokers) if (b.id == id) return b;
        return null;
    }

    /** The replicas of a partition, its leader first. */
    public int[] replicas(String topic, int partition) {
        int n = brokers.size();
        int start = Math.floorMod(topic.hashCode() + partition, n);
        int[] out = new int[replicationFactor];
        for (int i = 0; i < out.length; i++) out[i] = brokers.get((start + i) % n).id;
        return out;
    }
}
