import HubRedis

/// `StreamStore` on one Redis Stream per stream, under `<namespace>stream:{<length>:<name>}`
/// (hash-tagged by the name, see `key`), and its epoch in a companion string
/// `<stream key>:epoch` in the same cluster slot.
///
/// Each entry's ID is `<offset>-0` with one field `p` holding the payload, so an entry carries
/// its own offset, and the newest kept entry *is* the latest offset: `XADD ... MAXLEN = n`
/// never trims below one entry, so while the key exists the next offset is the newest ID + 1,
/// and trimming can never make an offset be reused. With `ttl`, both keys expire together.
///
/// The epoch key holds `<state>:<epoch>`: state `0` for an epoch created by `open` on an empty
/// stream (the first append keeps it), `1` once entries exist. An append that finds no entries
/// and no `0:` epoch starts a new epoch: the stream was lost (FLUSHALL, expiry, eviction), and
/// a reader of the old one must not take the new offsets for the old.
///
/// `append`, `read` and `open` are one Lua script each, so a read sees entries, latest offset,
/// oldest kept offset and epoch of the same instant.
public final class RedisStreamStore: StreamStore {
    private let client: RedisClient
    private let namespace: RedisNamespace

    /// KEYS[1] stream, KEYS[2] epoch; ARGV[1] payload, ARGV[2] max length, ARGV[3] ttl ms (0:
    /// none), ARGV[4] a fresh epoch. Returns {offset, epoch}.
    static let appendScript = RedisScript("""
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        local marked = redis.call('GET', KEYS[2])
        local offset = 1
        local epoch = ARGV[4]
        if #newest > 0 then
          offset = tonumber(string.match(newest[1][1], '^(%d+)')) + 1
          if marked then epoch = string.sub(marked, 3) end
        elseif marked and string.sub(marked, 1, 2) == '0:' then
          epoch = string.sub(marked, 3)
        end
        redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], string.format('%d-0', offset), 'p', ARGV[1])
        redis.call('SET', KEYS[2], '1:' .. epoch)
        local ttl = tonumber(ARGV[3])
        if ttl > 0 then
          redis.call('PEXPIRE', KEYS[1], ttl)
          redis.call('PEXPIRE', KEYS[2], ttl)
        else
          redis.call('PERSIST', KEYS[1])
        end
        return {offset, epoch}
        """)

    /// KEYS[1] stream, KEYS[2] epoch; ARGV[1] since, ARGV[2] limit. Returns {latest, recovered
    /// (0/1), {offset, payload, ...}, epoch or false}. `recovered` follows `StreamRead`: since at
    /// or past latest recovers only when equal; otherwise the oldest kept entry must be at most
    /// since + 1.
    static let readScript = RedisScript("""
        local since = tonumber(ARGV[1])
        local marked = redis.call('GET', KEYS[2])
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #newest == 0 then
          local epoch = false
          if marked and string.sub(marked, 1, 2) == '0:' then epoch = string.sub(marked, 3) end
          if since == 0 then return {0, 1, {}, epoch} end
          return {0, 0, {}, epoch}
        end
        local epoch = false
        if marked then epoch = string.sub(marked, 3) end
        local latest = tonumber(string.match(newest[1][1], '^(%d+)'))
        if since >= latest then
          if since == latest then return {latest, 1, {}, epoch} end
          return {latest, 0, {}, epoch}
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
        return {latest, recovered, out, epoch}
        """)

    /// KEYS[1] stream, KEYS[2] epoch; ARGV[1] a fresh epoch, ARGV[2] ttl ms (0: none). Returns
    /// {latest, epoch}, creating the epoch when the stream has none (or only a stale one).
    static let openScript = RedisScript("""
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        local marked = redis.call('GET', KEYS[2])
        local latest = 0
        if #newest > 0 then latest = tonumber(string.match(newest[1][1], '^(%d+)')) end
        local state = '0:'
        if latest > 0 then state = '1:' end
        if not marked or string.sub(marked, 1, 2) ~= state then
          marked = state .. ARGV[1]
          redis.call('SET', KEYS[2], marked)
        end
        local ttl = tonumber(ARGV[2])
        if ttl > 0 then
          if latest > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
          redis.call('PEXPIRE', KEYS[2], ttl)
        end
        return {latest, string.sub(marked, 3)}
        """)

    public init(client: RedisClient, namespace: RedisNamespace) {
        self.client = client
        self.namespace = namespace
    }

    /// `<ns>stream:{<byte length>:<name>}`: the hash tag is the stream's own, so the stream and
    /// its `:epoch` companion share one cluster slot (the scripts touch both). The length
    /// keeps the tag non-empty (Redis hashes the whole key for `{}`, which a name starting
    /// with `}` would otherwise give) and every stream's key distinct.
    private func key(_ name: String) -> String { namespace.key("stream", "{\(name.utf8.count):\(name)}") }
    private func keys(_ name: String) -> [RedisArgument] {
        let stream = key(name)
        return [RedisArgument(stream), RedisArgument(stream + ":epoch")]
    }

    public func append(_ stream: String, _ payload: [UInt8], maxLength: Int, ttl: Duration?) async throws(StoreError) -> StreamPosition {
        try StoreLimits.check(key: stream)
        try StoreLimits.check(value: payload)
        let keep = HotStateChecks.clampStreamLength(maxLength)
        let ms = try ttl.map { ttl throws(StoreError) in try HotStateChecks.milliseconds(ttl) } ?? 0
        let reply = try await client.storeEval(Self.appendScript, keys: keys(stream),
                                               args: [RedisArgument(bytes: payload), RedisArgument(keep), RedisArgument(Int(ms)),
                                                      RedisArgument(StreamPosition.newEpoch())])
        guard case .array(let parts) = reply, parts.count == 2, case .integer(let offset) = parts[0], offset > 0,
              let epoch = parts[1].text else { throw .backend("stream append answered \(reply)") }
        return StreamPosition(offset: UInt64(offset), epoch: epoch)
    }

    public func open(_ stream: String, ttl: Duration?) async throws(StoreError) -> StreamPosition {
        try StoreLimits.check(key: stream)
        let ms = try ttl.map { ttl throws(StoreError) in try HotStateChecks.milliseconds(ttl) } ?? 0
        let reply = try await client.storeEval(Self.openScript, keys: keys(stream),
                                               args: [RedisArgument(StreamPosition.newEpoch()), RedisArgument(Int(ms))])
        guard case .array(let parts) = reply, parts.count == 2, case .integer(let latest) = parts[0], latest >= 0,
              let epoch = parts[1].text else { throw .backend("stream open answered \(reply)") }
        return StreamPosition(offset: UInt64(latest), epoch: epoch)
    }

    public func read(_ stream: String, after since: UInt64, limit: Int) async throws(StoreError) -> StreamRead {
        try StoreLimits.check(key: stream)
        let limit = StoreLimits.clampBatch(limit)
        let reply = try await client.storeEval(Self.readScript, keys: keys(stream),
                                               args: [RedisArgument(String(since)), RedisArgument(limit)])
        guard case .array(let parts) = reply, parts.count == 4, case .integer(let latest) = parts[0], latest >= 0,
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
        // Lua's `false` arrives as a nil reply: no epoch.
        return StreamRead(entries: entries, latestOffset: UInt64(latest), recovered: recovered == 1, epoch: parts[3].text)
    }
}
