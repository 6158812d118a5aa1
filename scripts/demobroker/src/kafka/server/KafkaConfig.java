package kafka.server;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The demo broker's settings, given as {@code --key=value} or {@code --key value} arguments.
 * Names follow Kafka's where Kafka has the setting.
 */
public final class KafkaConfig {
    public int brokerId = 0;
    public String listenHost = "127.0.0.1";
    public int port = 9092;
    public String advertisedHost = "127.0.0.1";
    public int advertisedPort; // defaults to the bound port
    public String clusterId = "lockscope-demo";
    public String logDir = "/tmp/lockscope-demo-logs";
    public int partitions = 3;
    public boolean autoCreateTopics = true;
    public int networkThreads = 3;
    public int ioThreads = 8;
    public int queuedMaxRequests = 500;
    public int socketRequestMaxBytes = 100 * 1024 * 1024;
    public long segmentBytes = 64L * 1024 * 1024;
    public long flushMessages = 0; // fsync inside the append lock every N appends (0: never)
    public long flushIntervalMs = 1000; // scheduler flush + checkpoint period (0: off)
    public long stallMs = 0; // fault: sleep inside the append lock ...
    public long stallEvery = 0; // ... every N appends of a partition
    public int pressureThreads = 0; // fault: writers that fsync small files, loading the FS journal
    public int pressureWriteKb = 256;
    public long faultOnMs = 0; // fault schedule: faults act for this long ...
    public long faultOffMs = 0; // ... then rest this long (0: faults act all the time)
    public int gcStormMbS = 0; // fault: allocate this many MB/s, keeping gcStormRetainMb alive
    public int gcStormRetainMb = 64;
    public String appendMode = "direct"; // direct: handlers append; handoff: one log-writer thread does
    public String requestLog = ""; // Kafka's request log (kafka.request.logger, JSON) of every request, with its phases
    public String cluster = ""; // ID@HOST:PORT,... of every broker (this one included); empty: a single node
    public int replicationFactor = 3; // replicas of each partition (at most the cluster's size)
    public long replicaLagTimeMaxMs = 10_000; // a follower not caught up for this long leaves the ISR
    public int minInsyncReplicas = 1; // acks=all fails with NOT_ENOUGH_REPLICAS below this ISR size

    static final String USAGE = String.join("\n",
            "usage: java -cp CLASSES kafka.Kafka [--option=value ...]",
            "  --port=9092               listen port (0: any free port; the bound port is printed)",
            "  --listen-host=127.0.0.1   listen address",
            "  --advertised-host=HOST    host given to clients in metadata (default 127.0.0.1)",
            "  --log-dir=DIR             where topic-partition directories live",
            "  --partitions=3            partitions of auto-created topics",
            "  --auto-create-topics=true create topics on first metadata request",
            "  --network-threads=3       network (processor) threads",
            "  --io-threads=8            request-handler threads",
            "  --segment-bytes=67108864  roll a segment past this size",
            "  --flush-messages=0        fsync inside the append lock every N appends (0: never)",
            "  --flush-interval-ms=1000  periodic flush and recovery-point checkpoint (0: off)",
            "  --stall-ms=0              fault: sleep this long inside the append lock ...",
            "  --stall-every=0           ... every N appends of a partition",
            "  --pressure-threads=0      fault: threads writing and fsyncing files in the log dir",
            "  --pressure-write-kb=256   size of each pressure write before its fsync",
            "  --fault-on-ms=0           fault schedule: the faults act this long (printing 'fault on NANOS') ...",
            "  --fault-off-ms=0          ... then rest this long ('fault off NANOS'); 0: they act all the time",
            "  --gc-storm-mb-s=0         fault: allocate this many MB/s in short-lived and retained objects",
            "  --gc-storm-retain-mb=64   how much of it stays reachable (a churning cache)",
            "  --append-mode=direct      direct: handlers append under the log's lock; handoff: one",
            "                            kafka-log-writer thread appends, fed through a queue",
            "  --request-log=FILE        write Kafka's request log (JSON, Kafka 2.8+), phases per request",
            "  --cluster=ID@HOST:PORT,.. every broker of a replicated cluster, this one (--broker-id) included;",
            "                            followers fetch from leaders and acks=all waits for the ISR",
            "  --replication-factor=3    replicas of each partition (at most the cluster's size)",
            "  --replica-lag-time-max-ms=10000  a follower not caught up for this long leaves the ISR",
            "  --min-insync-replicas=1   acks=all fails with NOT_ENOUGH_REPLICAS below this ISR size");

    public static KafkaConfig parse(String[] args) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) throw new IllegalArgumentException(USAGE);
            if (!a.startsWith("--")) throw new IllegalArgumentException("unexpected argument " + a + "\n" + USAGE);
            int eq = a.indexOf('=');
            if (eq > 0) {
                kv.put(a.substring(2, eq), a.substring(eq + 1));
            } else if (i + 1 < args.length) {
                kv.put(a.substring(2), args[++i]);
            } else {
                throw new IllegalArgumentException("option " + a + " needs a value\n" + USAGE);
            }
        }
        KafkaConfig c = new KafkaConfig();
        for (Map.Entry<String, String> e : kv.entrySet()) {
            String v = e.getValue();
            try {
                switch (e.getKey()) {
                    case "broker-id": c.brokerId = Integer.parseInt(v); break;
                    case "listen-host": c.listenHost = v; break;
                    case "port": c.port = Integer.parseInt(v); break;
                    case "advertised-host": c.advertisedHost = v; break;
                    case "advertised-port": c.advertisedPort = Integer.parseInt(v); break;
                    case "cluster-id": c.clusterId = v; break;
                    case "log-dir": c.logDir = v; break;
                    case "partitions": c.partitions = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "auto-create-topics": c.autoCreateTopics = Boolean.parseBoolean(v); break;
                    case "network-threads": c.networkThreads = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "io-threads": c.ioThreads = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "queued-max-requests": c.queuedMaxRequests = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "socket-request-max-bytes": c.socketRequestMaxBytes = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "segment-bytes": c.segmentBytes = positive(e.getKey(), Long.parseLong(v)); break;
                    case "flush-messages": c.flushMessages = Long.parseLong(v); break;
                    case "flush-interval-ms": c.flushIntervalMs = Long.parseLong(v); break;
                    case "stall-ms": c.stallMs = Long.parseLong(v); break;
                    case "stall-every": c.stallEvery = Long.parseLong(v); break;
                    case "pressure-threads": c.pressureThreads = Integer.parseInt(v); break;
                    case "pressure-write-kb": c.pressureWriteKb = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "fault-on-ms": c.faultOnMs = Long.parseLong(v); break;
                    case "fault-off-ms": c.faultOffMs = Long.parseLong(v); break;
                    case "gc-storm-mb-s": c.gcStormMbS = Integer.parseInt(v); break;
                    case "gc-storm-retain-mb": c.gcStormRetainMb = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "cluster": c.cluster = v; break;
                    case "request-log": c.requestLog = v; break;
                    case "replication-factor": c.replicationFactor = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "replica-lag-time-max-ms": c.replicaLagTimeMaxMs = positive(e.getKey(), Long.parseLong(v)); break;
                    case "min-insync-replicas": c.minInsyncReplicas = positive(e.getKey(), Integer.parseInt(v)); break;
                    case "append-mode":
                        if (!v.equals("direct") && !v.equals("handoff")) throw new IllegalArgumentException("option --append-mode: want direct or handoff, got " + v);
                        c.appendMode = v;
                        break;
                    default: throw new IllegalArgumentException("unknown option --" + e.getKey() + "\n" + USAGE);
                }
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException("option --" + e.getKey() + ": not a number: " + v);
            }
        }
        return c;
    }

    private static <T extends Number> T positive(String key, T v) {
        if (v.longValue() <= 0) throw new IllegalArgumentException("option --" + key + " must be positive, got " + v);
        return v;
    }
}
