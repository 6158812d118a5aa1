package kafka.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import kafka.log.UnifiedLog;
import kafka.cluster.Partition;
import kafka.network.RequestChannel;
import kafka.network.RequestChannel.Request;
import kafka.network.RequestChannel.Response;
import kafka.protocol.ApiKeys;
import kafka.protocol.Errors;
import kafka.protocol.InvalidRequestException;
import kafka.protocol.Reader;
import kafka.protocol.RequestHeader;
import kafka.protocol.Writer;

/**
 * Request dispatch: ApiVersions v0-v3, Metadata v0-v12, Produce v3-v9, Fetch v4-v11. A request that does not
 * parse closes its connection (Kafka's InvalidRequestException path); an unsupported version of
 * ApiVersions gets UNSUPPORTED_VERSION with our version ranges, so the client can retry.
 */
public final class KafkaApis {
    private final ReplicaManager replicaManager;
    private final KafkaConfig config;

    // Fetches that found too little data wait here, off the handler threads, as in Kafka's
    // purgatory; named after Kafka's reaper thread.
    private final ScheduledExecutorService fetchPurgatory = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "ExpirationReaper-0-Fetch");
        t.setDaemon(true);
        return t;
    });
    private RequestChannel channel;

    public KafkaApis(ReplicaManager replicaManager, KafkaConfig config) {
        this.replicaManager = replicaManager;
        this.config = config;
    }

    /** Delayed fetch responses are sent through the channel. */
    public void setRequestChannel(RequestChannel channel) {
        this.channel = channel;
    }

    public Response handle(Request req) {
        RequestHeader h = req.header;
        try {
            if (h.api == ApiKeys.API_VERSIONS) return handleApiVersions(req);
            if (!h.api.supports(h.apiVersion)) {
                System.err.println("closing connection: unsupported version (" + h + ")");
                return Response.close(req);
            }
            switch (h.api) {
                case METADATA:
                    return handleMetadata(req);
                case PRODUCE:
                    return handleProduceRequest(req);
                case FETCH:
                    return handleFetchRequest(req);
                case LIST_OFFSETS:
                    return handleListOffsetsRequest(req);
                default:
                    return Response.close(req);
            }
        } catch (InvalidRequestException e) {
            System.err.println("closing connection: invalid request (" + h + "): " + e.getMessage());
            return Response.close(req);
        } catch (IOException e) {
            System.err.println("closing connection: I/O error handling " + h + ": " + e);
            return Response.close(req);
        } catch (RuntimeException e) {
            System.err.println("closing connection: error handling " + h + ": " + e);
            return Response.close(req);
        }
    }

    private Response handleApiVersions(Request req) {
        RequestHeader h = req.header;
        boolean supported = ApiKeys.API_VERSIONS.supports(h.apiVersion);
        // An unsupported (newer) version is answered in v0 so that any client can read it.
        short v = supported ? h.apiVersion : 0;
        boolean flexible = ApiKeys.API_VERSIONS.flexible(v);
        Writer w = h.responseWriter();
        w.int16(supported ? Errors.NONE : Errors.UNSUPPORTED_VERSION);
        w.arrayLength(ApiKeys.values().length, flexible);
        for (ApiKeys k : ApiKeys.values()) {
            w.int16(k.id).int16(k.min).int16(k.max).emptyTaggedFields(flexible);
        }
        if (v >= 1) w.int32(0); // throttle_time_ms
        w.emptyTaggedFields(flexible);
        return Response.send(req, w.frame());
    }

    private Response handleMetadata(Request req) throws IOException {
        RequestHeader h = req.header;
        short v = h.apiVersion;
        boolean flex = ApiKeys.METADATA.flexible(v);
        Reader r = new Reader(req.body);
        int n = r.arrayLength(flex);
        List<String> requested = null; // null: all topics
        if (n >= 0) {
            requested = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                if (v >= 10) r.uuid();
                String name = flex ? r.compactNullableString() : r.string();
                if (flex) r.skipTaggedFields();
                if (name != null) requested.add(name);
            }
        }
        if (v == 0 && n == 0) requested = null; // v0: an empty list means all topics
        boolean allowAutoCreate = v < 4 || r.bool();
        // The remaining fields (authorized-operations flags, tagged fields) change nothing here.

        List<String> names = requested != null ? requested : replicaManager.topicNames();
        Writer w = h.responseWriter();
        if (v >= 3) w.int32(0); // throttle_time_ms
        Cluster cluster = replicaManager.cluster();
        if (cluster.replicated()) {
            w.arrayLength(cluster.brokers.size(), flex);
            for (Cluster.Broker b : cluster.brokers) {
                w.int32(b.id).string(b.host, flex).int32(b.port);
                if (v >= 1) w.nullableString(null, flex); // rack
                w.emptyTaggedFields(flex);
            }
        } else {
            w.arrayLength(1, flex);
            w.int32(config.brokerId).string(config.advertisedHost, flex).int32(config.advertisedPort);
            if (v >= 1) w.nullableString(null, flex); // rack
            w.emptyTaggedFields(flex);
        }
        if (v >= 2) w.nullableString(config.clusterId, flex);
        if (v >= 1) w.int32(config.brokerId); // controller
        w.arrayLength(names.size(), flex);
        for (String name : names) {
            Partition[] ps = replicaManager.topic(name, allowAutoCreate && requested != null);
            short err = ps == null ? Errors.UNKNOWN_TOPIC_OR_PARTITION : Errors.NONE;
            w.int16(err);
            w.string(name, flex);
            if (v >= 10) w.uuidZero();
            if (v >= 1) w.bool(false); // is_internal
            int np = ps == null ? 0 : ps.length;
            w.arrayLength(np, flex);
            for (int p = 0; p < np; p++) {
                int[] replicas = cluster.replicated() ? cluster.replicas(name, p) : new int[] {config.brokerId};
                int[] isr = replicas;
                if (ps[p] != null && cluster.replicated()) isr = ps[p].inSyncReplicas();
                w.int16(Errors.NONE).int32(p).int32(replicas[0]);
                if (v >= 7) w.int32(0); // leader epoch
                w.arrayLength(replicas.length, flex);
                for (int id : replicas) w.int32(id);
                w.arrayLength(isr.length, flex);
                for (int id : isr) w.int32(id);
                if (v >= 5) w.arrayLength(0, flex); // offline replicas
                w.emptyTaggedFields(flex);
            }
            if (v >= 8) w.int32(Integer.MIN_VALUE); // topic authorized operations: not requested
            w.emptyTaggedFields(flex);
        }
        if (v >= 8 && v <= 10) w.int32(Integer.MIN_VALUE); // cluster authorized operations
        w.emptyTaggedFields(flex);
        return Response.send(req, w.frame());
    }

    /** One partition of a fetch request. */
    private static final class FetchPartition {
        final String topic;
        final int partition;
        final long offset;
        final int maxBytes;

        FetchPartition(String topic, int partition, long offset, int maxBytes) {
            this.topic = topic;
            this.partition = partition;
            this.offset = offset;
            this.maxBytes = maxBytes;
        }
    }

    /**
     * Fetch v4-v11 without sessions (session id 0 tells the client none was created): reads each
     * partition, and when fewer than min_bytes are available, re-reads every 10 ms from the
     * purgatory thread until they are or max_wait_ms has passed.
     */
    private Response handleFetchRequest(Request req) throws IOException {
        short v = req.header.apiVersion;
        Reader r = new Reader(req.body);
        int replicaId = r.int32(); // -1: a consumer; a broker id: a follower fetching
        int maxWaitMs = r.int32();
        int minBytes = r.int32();
        int maxBytes = r.int32();
        r.int8(); // isolation level: there are no transactions here
        if (v >= 7) { r.int32(); r.int32(); } // session id, epoch
        int nTopics = r.arrayLength(false);
        if (nTopics < 0) throw new InvalidRequestException("null topic array");
        List<FetchPartition> parts = new ArrayList<>();
        for (int t = 0; t < nTopics; t++) {
            String topic = r.string();
            int n = r.arrayLength(false);
            if (n < 0) throw new InvalidRequestException("null partition array");
            for (int p = 0; p < n; p++) {
                int partition = r.int32();
                if (v >= 9) r.int32(); // current leader epoch
                long offset = r.int64();
                if (v >= 5) r.int64(); // log start offset
                parts.add(new FetchPartition(topic, partition, offset, r.int32()));
            }
        }
        long deadline = System.nanoTime() + Math.max(0, Math.min(maxWaitMs, 30_000)) * 1_000_000L;
        return fetch(req, parts, minBytes, maxBytes, deadline, replicaId);
    }

    private Response fetch(Request req, List<FetchPartition> parts, int minBytes, int maxBytes, long deadline, int replicaId) throws IOException {
        short v = req.header.apiVersion;
        UnifiedLog.FetchData[] data = new UnifiedLog.FetchData[parts.size()];
        int total = 0;
        for (int i = 0; i < data.length; i++) {
            FetchPartition fp = parts.get(i);
            data[i] = replicaManager.fetch(fp.topic, fp.partition, fp.offset, Math.min(fp.maxBytes, Math.max(1, maxBytes - total)), replicaId);
            if (data[i] != null && data[i].records != null) total += data[i].records.remaining();
        }
        if (total < Math.max(1, minBytes) && System.nanoTime() < deadline) {
            fetchPurgatory.schedule(() -> {
                Response resp;
                try {
                    resp = fetch(req, parts, minBytes, maxBytes, deadline, -2); // a re-read: the follower's offset is known
                } catch (IOException | RuntimeException e) {
                    System.err.println("closing connection: error in delayed fetch: " + e);
                    resp = Response.close(req);
                }
                if (resp != null) channel.sendResponse(resp);
            }, 10, TimeUnit.MILLISECONDS);
            return null; // answered later
        }
        Writer w = req.header.responseWriter();
        w.int32(0); // throttle
        if (v >= 7) w.int16(Errors.NONE).int32(0); // error, session id 0: no session
        // Group the partitions by topic again, keeping request order.
        List<Integer> topicStarts = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) {
            if (i == 0 || !parts.get(i).topic.equals(parts.get(i - 1).topic)) topicStarts.add(i);
        }
        w.int32(topicStarts.size());
        for (int ti = 0; ti < topicStarts.size(); ti++) {
            int from = topicStarts.get(ti);
            int to = ti + 1 < topicStarts.size() ? topicStarts.get(ti + 1) : parts.size();
            w.string(parts.get(from).topic, false).int32(to - from);
            for (int i = from; i < to; i++) {
                UnifiedLog.FetchData d = data[i];
                short err = d == null ? Errors.UNKNOWN_TOPIC_OR_PARTITION
                        : d.records == null ? Errors.OFFSET_OUT_OF_RANGE : Errors.NONE;
                long hw = d == null ? -1 : d.highWatermark;
                w.int32(parts.get(i).partition).int16(err).int64(hw).int64(hw); // high watermark, last stable offset
                if (v >= 5) w.int64(d == null ? -1 : 0); // log start offset
                w.int32(-1); // aborted transactions: null
                if (v >= 11) w.int32(-1); // preferred read replica: none
                if (d == null || d.records == null) {
                    w.int32(0);
                } else {
                    w.bytes(d.records);
                }
            }
        }
        return Response.send(req, w.frame());
    }

    /**
     * ListOffsets v1-v5: latest (-1) is the high watermark, earliest (-2) is 0 (nothing is ever
     * deleted here); a lookup by timestamp is not indexed and finds nothing (offset -1).
     */
    private Response handleListOffsetsRequest(Request req) throws IOException {
        short v = req.header.apiVersion;
        Reader r = new Reader(req.body);
        r.int32(); // replica id
        if (v >= 2) r.int8(); // isolation level
        int nTopics = r.arrayLength(false);
        if (nTopics < 0) throw new InvalidRequestException("null topic array");
        Writer w = req.header.responseWriter();
        if (v >= 2) w.int32(0); // throttle
        w.int32(nTopics);
        for (int t = 0; t < nTopics; t++) {
            String topic = r.string();
            int n = r.arrayLength(false);
            if (n < 0) throw new InvalidRequestException("null partition array");
            w.string(topic, false).int32(n);
            for (int p = 0; p < n; p++) {
                int partition = r.int32();
                if (v >= 4) r.int32(); // current leader epoch
                long timestamp = r.int64();
                long hw = replicaManager.highWatermark(topic, partition);
                long offset = hw < 0 ? -1 : timestamp == -1 ? hw : timestamp == -2 ? 0 : -1;
                w.int32(partition).int16(hw < 0 ? Errors.UNKNOWN_TOPIC_OR_PARTITION : Errors.NONE);
                w.int64(-1).int64(offset); // timestamp, offset
                if (v >= 4) w.int32(0); // leader epoch
            }
        }
        return Response.send(req, w.frame());
    }

    /** The produce path: parse, append each partition's batches under its log lock, answer. */
    /** One partition's outcome in a produce response. */
    private static final class ProducePart {
        final String topic;
        final int index;
        ReplicaManager.PartitionResult res;

        ProducePart(String topic, int index, ReplicaManager.PartitionResult res) {
            this.topic = topic;
            this.index = index;
            this.res = res;
        }
    }

    private Response handleProduceRequest(Request req) throws IOException {
        RequestHeader h = req.header;
        short v = h.apiVersion;
        boolean flex = ApiKeys.PRODUCE.flexible(v);
        Reader r = new Reader(req.body);
        if (flex) r.compactNullableString(); else r.nullableString(); // transactional id
        short acks = r.int16();
        int timeoutMs = r.int32();
        int nTopics = r.arrayLength(flex);
        if (nTopics < 0) throw new InvalidRequestException("null topic array");
        boolean badAcks = acks != 0 && acks != 1 && acks != -1;
        boolean replicated = acks == -1 && replicaManager.cluster().replicated();
        List<List<ProducePart>> topics = new ArrayList<>();
        List<Partition> waitFor = new ArrayList<>();
        List<Long> required = new ArrayList<>();
        for (int t = 0; t < nTopics; t++) {
            String topic = flex ? r.compactString() : r.string();
            int nParts = r.arrayLength(flex);
            if (nParts < 0) throw new InvalidRequestException("null partition array");
            List<ProducePart> parts = new ArrayList<>();
            for (int p = 0; p < nParts; p++) {
                int index = r.int32();
                ByteBuffer records = flex ? r.compactNullableBytes() : r.nullableBytes();
                if (flex) r.skipTaggedFields();
                ReplicaManager.PartitionResult res;
                Partition part = replicated ? replicaManager.partition(topic, index) : null;
                if (badAcks) {
                    res = new ReplicaManager.PartitionResult(Errors.INVALID_REQUIRED_ACKS, -1, -1, "acks must be 0, 1 or -1");
                } else if (records == null) {
                    res = new ReplicaManager.PartitionResult(Errors.CORRUPT_MESSAGE, -1, -1, "null records");
                } else if (part != null && part.isLeader() && part.inSyncReplicas().length < config.minInsyncReplicas) {
                    res = new ReplicaManager.PartitionResult(Errors.NOT_ENOUGH_REPLICAS, -1, -1,
                            "the ISR of " + topic + "-" + index + " is smaller than min.insync.replicas");
                } else {
                    res = replicaManager.appendRecords(topic, index, records);
                    if (replicated && res.error == Errors.NONE) {
                        Partition pt = replicaManager.partition(topic, index);
                        waitFor.add(pt);
                        required.add(pt.logEndOffset());
                    }
                }
                parts.add(new ProducePart(topic, index, res));
            }
            if (flex) r.skipTaggedFields();
            topics.add(parts);
        }
        if (acks == 0) return Response.noOp(req);
        if (waitFor.isEmpty()) return Response.send(req, produceResponse(h, topics));
        // acks=all: the produce purgatory holds the response until every in-sync follower has
        // fetched past the batches (completed from the follower's fetch) or the timeout passes.
        long[] req0 = new long[required.size()];
        for (int i = 0; i < req0.length; i++) req0[i] = required.get(i);
        ReplicaManager.DelayedProduce[] self = new ReplicaManager.DelayedProduce[1];
        self[0] = new ReplicaManager.DelayedProduce(waitFor.toArray(new Partition[0]), req0,
                () -> channel.sendResponse(Response.send(req, produceResponse(h, topics))));
        if (replicaManager.park(self[0])) return null; // answered already
        fetchPurgatory.schedule(() -> {
            if (!replicaManager.expire(self[0])) return;
            for (List<ProducePart> parts : topics) {
                for (ProducePart pp : parts) {
                    Partition pt = replicaManager.partition(pp.topic, pp.index);
                    if (pp.res.error == Errors.NONE && pt != null && pt.highWatermark() < pt.logEndOffset()) {
                        pp.res = new ReplicaManager.PartitionResult(Errors.REQUEST_TIMED_OUT, -1, -1,
                                "followers did not replicate " + pp.topic + "-" + pp.index + " within " + timeoutMs + " ms");
                    }
                }
            }
            channel.sendResponse(Response.send(req, produceResponse(h, topics)));
        }, Math.max(1, timeoutMs), TimeUnit.MILLISECONDS);
        return null;
    }

    private static ByteBuffer produceResponse(RequestHeader h, List<List<ProducePart>> topics) {
        short v = h.apiVersion;
        boolean flex = ApiKeys.PRODUCE.flexible(v);
        Writer w = h.responseWriter();
        w.arrayLength(topics.size(), flex);
        for (List<ProducePart> parts : topics) {
            String topic = parts.isEmpty() ? "" : parts.get(0).topic;
            w.string(topic, flex).arrayLength(parts.size(), flex);
            for (ProducePart pp : parts) {
                ReplicaManager.PartitionResult res = pp.res;
                w.int32(pp.index).int16(res.error).int64(res.baseOffset);
                if (v >= 2) w.int64(-1); // log append time: -1 for CreateTime topics, as Kafka answers
                if (v >= 5) w.int64(0); // log start offset
                if (v >= 8) {
                    w.arrayLength(0, flex); // record errors
                    w.nullableString(res.message, flex);
                }
                w.emptyTaggedFields(flex);
            }
            w.emptyTaggedFields(flex);
        }
        if (v >= 1) w.int32(0); // throttle_time_ms
        w.emptyTaggedFields(flex);
        return w.frame();
    }
}
