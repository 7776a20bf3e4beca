import HubRedis

/// `KeyValueStore` on Redis strings under `<namespace>kv:<key>`.
///
/// Each operation is one command, atomic by itself: `GET`, `GETEX PX` (read and slide the
/// expiry), `SET [NX] [PX]`, `DEL`, `PTTL`; on a cluster, deleting several keys is one `DEL`
/// per key. TTLs are sent in milliseconds so both backends keep
/// the same precision.
public final class RedisKeyValueStore: KeyValueStore {
    private let client: RedisClient
    private let namespace: RedisNamespace

    public init(client: RedisClient, namespace: RedisNamespace) {
        self.client = client
        self.namespace = namespace
    }

    private func key(_ name: String) -> RedisArgument { RedisArgument(namespace.key("kv", name)) }

    public func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.check(key: key)
        return try Self.bytes(await client.storeSend(["GET", self.key(key)]))
    }

    public func get(_ key: String, refreshingTTL ttl: Duration) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.check(key: key)
        let ms = try HotStateChecks.milliseconds(ttl)
        return try Self.bytes(await client.storeSend(["GETEX", self.key(key), "PX", RedisArgument(Int(ms))]))
    }

    public func set(_ key: String, _ value: [UInt8], ttl: Duration?) async throws(StoreError) {
        try StoreLimits.check(key: key)
        try StoreLimits.check(value: value)
        var args: [RedisArgument] = ["SET", self.key(key), RedisArgument(bytes: value)]
        if let ttl { args += ["PX", RedisArgument(Int(try HotStateChecks.milliseconds(ttl)))] }
        let reply = try await client.storeSend(args)
        guard case .status = reply else { throw .backend("SET answered \(reply)") }
    }

    public func setIfAbsent(_ key: String, _ value: [UInt8], ttl: Duration?) async throws(StoreError) -> Bool {
        try StoreLimits.check(key: key)
        try StoreLimits.check(value: value)
        var args: [RedisArgument] = ["SET", self.key(key), RedisArgument(bytes: value), "NX"]
        if let ttl { args += ["PX", RedisArgument(Int(try HotStateChecks.milliseconds(ttl)))] }
        switch try await client.storeSend(args) {
        case .status: return true
        case .null: return false
        case let reply: throw .backend("SET NX answered \(reply)")
        }
    }

    @discardableResult
    public func delete(_ keys: [String]) async throws(StoreError) -> Int {
        try HotStateChecks.check(keys: keys)
        guard !keys.isEmpty else { return 0 }
        if client.isCluster && keys.count > 1 {
            // A cluster refuses a DEL whose keys lie in different slots (CROSSSLOT): one DEL per
            // key, sent together (one round trip per shard), counted as one DEL would.
            var deleted = 0
            for result in await client.sendAll(keys.map { ["DEL", self.key($0)] }) {
                let reply: RedisValue
                do { reply = try result.get() } catch { throw StoreError(error) }
                guard case .integer(let n) = reply else { throw .backend("DEL answered \(reply)") }
                deleted += Int(n)
            }
            return deleted
        }
        let reply = try await client.storeSend(["DEL"] + keys.map(key))
        guard case .integer(let n) = reply else { throw .backend("DEL answered \(reply)") }
        return Int(n)
    }

    public func timeToLive(_ key: String) async throws(StoreError) -> KeyExpiry? {
        try StoreLimits.check(key: key)
        let reply = try await client.storeSend(["PTTL", self.key(key)])
        guard case .integer(let ms) = reply else { throw .backend("PTTL answered \(reply)") }
        switch ms {
        case -2: return nil
        case -1: return .never
        case let ms where ms >= 0: return .after(milliseconds: ms)
        default: throw .backend("PTTL answered \(ms)")
        }
    }

    private static func bytes(_ reply: RedisValue) throws(StoreError) -> [UInt8]? {
        switch reply {
        case .string(let bytes): return bytes
        case .null: return nil
        default: throw .backend("GET answered \(reply)")
        }
    }
}
