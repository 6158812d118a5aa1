package kafka.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
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
 * Request dispatch: ApiVersions v0-v3, Metadata v0-v12, Produce v3-v9. A request that does not
 * parse closes its connection (Kafka's InvalidRequestException path); an unsupported version of
 * ApiVersions gets UNSUPPORTED_VERSION with our version ranges, so the client can retry.
 */
public final class KafkaApis {
    private final ReplicaManager replicaManager;
    private final KafkaConfig config;

    public KafkaApis(ReplicaManager replicaManager, KafkaConfig config) {
        this.replicaManager = replicaManager;
        this.config = config;
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
        w.arrayLength(1, flex);
        w.int32(config.brokerId).string(config.advertisedHost, flex).int32(config.advertisedPort);
        if (v >= 1) w.nullableString(null, flex); // rack
        w.emptyTaggedFields(flex);
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
                w.int16(Errors.NONE).int32(p).int32(config.brokerId);
                if (v >= 7) w.int32(0); // leader epoch
                w.arrayLength(1, flex).int32(config.brokerId); // replicas
                w.arrayLength(1, flex).int32(config.brokerId); // isr
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

    /** The produce path: parse, append each partition's batches under its log lock, answer. */
    private Response handleProduceRequest(Request req) throws IOException {
        RequestHeader h = req.header;
        short v = h.apiVersion;
        boolean flex = ApiKeys.PRODUCE.flexible(v);
        Reader r = new Reader(req.body);
        if (flex) r.compactNullableString(); else r.nullableString(); // transactional id
        short acks = r.int16();
        r.int32(); // timeout
        int nTopics = r.arrayLength(flex);
        if (nTopics < 0) throw new InvalidRequestException("null topic array");
        Writer w = h.responseWriter();
        w.arrayLength(nTopics, flex);
        boolean badAcks = acks != 0 && acks != 1 && acks != -1;
        for (int t = 0; t < nTopics; t++) {
            String topic = flex ? r.compactString() : r.string();
            int nParts = r.arrayLength(flex);
            if (nParts < 0) throw new InvalidRequestException("null partition array");
            w.string(topic, flex).arrayLength(nParts, flex);
            for (int p = 0; p < nParts; p++) {
                int index = r.int32();
                ByteBuffer records = flex ? r.compactNullableBytes() : r.nullableBytes();
                if (flex) r.skipTaggedFields();
                ReplicaManager.PartitionResult res;
                if (badAcks) {
                    res = new ReplicaManager.PartitionResult(Errors.INVALID_REQUIRED_ACKS, -1, -1, "acks must be 0, 1 or -1");
                } else if (records == null) {
                    res = new ReplicaManager.PartitionResult(Errors.CORRUPT_MESSAGE, -1, -1, "null records");
                } else {
                    res = replicaManager.appendRecords(topic, index, records);
                }
                w.int32(index).int16(res.error).int64(res.baseOffset);
                if (v >= 2) w.int64(-1); // log append time: -1 for CreateTime topics, as Kafka answers
                if (v >= 5) w.int64(0); // log start offset
                if (v >= 8) {
                    w.arrayLength(0, flex); // record errors
                    w.nullableString(res.message, flex);
                }
                w.emptyTaggedFields(flex);
            }
            if (flex) r.skipTaggedFields();
            w.emptyTaggedFields(flex);
        }
        if (flex) r.skipTaggedFields();
        if (v >= 1) w.int32(0); // throttle_time_ms
        w.emptyTaggedFields(flex);
        if (acks == 0) return Response.noOp(req);
        return Response.send(req, w.frame());
    }
}
