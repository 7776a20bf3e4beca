import HubRedis

/// `StreamStore` on one Redis Stream per stream, under `<namespace>stream:<name>`.
///
/// Each entry's ID is `<offset>-0` with one field `p` holding the payload, so an entry carries
/// its own offset, and the newest kept entry *is* the latest offset: `XADD ... MAXLEN = n`
/// never trims below one entry, so while the key exists the next offset is the newest ID + 1,
/// and trimming can never make an offset be reused. One key also means one TTL: with `ttl`,
/// the entries and the offset counter expire together, as the contract asks.
///
/// `append` and `read` are one Lua script each, so a read sees entries, latest offset and
/// oldest kept offset of the same instant.
public final class RedisStreamStore: StreamStore {
    private let client: RedisClient
    private let namespace: RedisNamespace

    /// KEYS[1] stream; ARGV[1] payload, ARGV[2] max length, ARGV[3] ttl ms (0: none).
    /// Returns the new offset.
    static let appendScript = RedisScript("""
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        local offset = 1
        if #newest > 0 then
          offset = tonumber(string.match(newest[1][1], '^(%d+)')) + 1
        end
        redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], string.format('%d-0', offset), 'p', ARGV[1])
        local ttl = tonumber(ARGV[3])
        if ttl > 0 then
          redis.call('PEXPIRE', KEYS[1], ttl)
        else
          redis.call('PERSIST', KEYS[1])
        end
        return offset
        """)

    /// KEYS[1] stream; ARGV[1] since, ARGV[2] limit. Returns {latest, recovered (0/1),
    /// {offset, payload, offset, payload, ...}}. `recovered` follows `StreamRead`: since at or
    /// past latest recovers only when equal; otherwise the oldest kept entry must be at most
    /// since + 1.
    static let readScript = RedisScript("""
        local since = tonumber(ARGV[1])
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #newest == 0 then
          if since == 0 then return {0, 1, {}} end
          return {0, 0, {}}
        end
        local latest = tonumber(string.match(newest[1][1], '^(%d+)'))
        if since >= latest then
          if since == latest then return {latest, 1, {}} end
          return {latest, 0, {}}
        end
        local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
        local oldest = tonumber(string.match(first[1][1], '^(%d+)'))
        local recovered = 0
        if oldest <= since + 1 then recovered = 1 end
        local rows = redis.call('XRANGE', KEYS[1], string.format('%d-0', since + 1), '+', 'COUNT', ARGV[2])
        local out = {}
        for _, row in ipairs(rows) do
          out[#out + 1] = string.match(row[1], '^(%d+)')
          out[#out + 1] = row[2][2]
        end
        return {latest, recovered, out}
        """)

    public init(client: RedisClient, namespace: RedisNamespace) {
        self.client = client
        self.namespace = namespace
    }

    /// `<ns>stream:{<byte length>:<name>}`: the hash tag is the stream's own, so the stream and
    /// any companion key named `<stream key>:<suffix>` share one cluster slot. The length
    /// keeps the tag non-empty (Redis hashes the whole key for `{}`, which a name starting
    /// with `}` would otherwise give) and every stream's key distinct.
    private func key(_ name: String) -> RedisArgument { RedisArgument(namespace.key("stream", "{\(name.utf8.count):\(name)}")) }

    public func append(_ stream: String, _ payload: [UInt8], maxLength: Int, ttl: Duration?) async throws(StoreError) -> UInt64 {
        try StoreLimits.check(key: stream)
        try StoreLimits.check(value: payload)
        let keep = HotStateChecks.clampStreamLength(maxLength)
        let ms = try ttl.map { ttl throws(StoreError) in try HotStateChecks.milliseconds(ttl) } ?? 0
        let reply = try await client.storeEval(Self.appendScript, keys: [key(stream)],
                                               args: [RedisArgument(bytes: payload), RedisArgument(keep), RedisArgument(Int(ms))])
        guard case .integer(let offset) = reply, offset > 0 else { throw .backend("stream append answered \(reply)") }
        return UInt64(offset)
    }

    public func read(_ stream: String, after since: UInt64, limit: Int) async throws(StoreError) -> StreamRead {
        try StoreLimits.check(key: stream)
        let limit = StoreLimits.clampBatch(limit)
        let reply = try await client.storeEval(Self.readScript, keys: [key(stream)],
                                               args: [RedisArgument(String(since)), RedisArgument(limit)])
        guard case .array(let parts) = reply, parts.count == 3, case .integer(let latest) = parts[0], latest >= 0,
              case .integer(let recovered) = parts[1], case .array(let flat) = parts[2], flat.count % 2 == 0 else {
            throw .backend("stream read answered \(reply)")
        }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(flat.count / 2)
        var i = 0
        while i < flat.count {
            guard let offsetText = flat[i].text, let offset = UInt64(offsetText), let payload = flat[i + 1].bytes else {
                throw .backend("stream read answered an entry \(flat[i]) \(flat[i + 1])")
            }
            entries.append(StreamEntry(offset: offset, payload: payload))
            i += 2
        }
        return StreamRead(entries: entries, latestOffset: UInt64(latest), recovered: recovered == 1)
    }
}
