package kafka.protocol;

/**
 * A request header: v1 (api key, version, correlation id, client id) for non-flexible request
 * versions, v2 (plus tagged fields) for flexible ones. The client id is never a compact string.
 */
public final class RequestHeader {
    public final short apiKey;
    public final short apiVersion;
    public final int correlationId;
    public final String clientId;
    public final ApiKeys api; // null when the broker does not serve this API

    private RequestHeader(short apiKey, short apiVersion, int correlationId, String clientId, ApiKeys api) {
        this.apiKey = apiKey;
        this.apiVersion = apiVersion;
        this.correlationId = correlationId;
        this.clientId = clientId;
        this.api = api;
    }

    public static RequestHeader parse(Reader r) {
        short key = r.int16();
        short version = r.int16();
        int correlationId = r.int32();
        String clientId = r.nullableString();
        ApiKeys api = ApiKeys.forId(key);
        // ApiVersions requests of versions newer than ours still have a v2 header (KIP-511).
        if (api != null && api.flexible(version)) r.skipTaggedFields();
        return new RequestHeader(key, version, correlationId, clientId, api);
    }

    /**
     * Starts a response with the header this request calls for: ApiVersions responses always use
     * header v0 (so that a client can read the error of a version it sent too new), other flexible
     * responses header v1 (tagged fields after the correlation id).
     */
    public Writer responseWriter() {
        Writer w = new Writer().int32(correlationId);
        if (api != null && api != ApiKeys.API_VERSIONS && api.flexible(apiVersion)) w.emptyTaggedFields(true);
        return w;
    }

    @Override
    public String toString() {
        return (api != null ? api.name() : "api" + apiKey) + " v" + apiVersion + " corr=" + correlationId + " client=" + clientId;
    }
}
