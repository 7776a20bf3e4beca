import HubRedis

/// `CounterStore` on Redis integers under `<namespace>counter:<key>`.
///
/// `increment` is one Lua script, so the fixed window is exact under concurrency: `INCRBY`,
/// then `PEXPIRE` only when the key has no expiry yet (it was just created), then `PTTL`.
/// Every node increments the same key, so limits hold across the cluster.
public final class RedisCounterStore: CounterStore {
    private let client: RedisClient
    private let namespace: RedisNamespace

    /// KEYS[1] counter; ARGV[1] delta, ARGV[2] window ms. Returns {value as a string, pttl}.
    /// The value goes back through `GET` as a string: Lua numbers are doubles and would round
    /// counters above 2^53.
    static let incrementScript = RedisScript("""
        redis.call('INCRBY', KEYS[1], ARGV[1])
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          ttl = tonumber(ARGV[2])
        end
        return {redis.call('GET', KEYS[1]), ttl}
        """)

    public init(client: RedisClient, namespace: RedisNamespace) {
        self.client = client
        self.namespace = namespace
    }

    private func key(_ name: String) -> RedisArgument { RedisArgument(namespace.key("counter", name)) }

    public func increment(_ key: String, by delta: Int64, window: Duration) async throws(StoreError) -> CounterValue {
        try StoreLimits.check(key: key)
        let windowMs = try HotStateChecks.milliseconds(window, "window")
        let reply: RedisValue
        do {
            reply = try await client.eval(Self.incrementScript, keys: [self.key(key)],
                                          args: [RedisArgument(String(delta)), RedisArgument(Int(windowMs))])
        } catch {
            // INCRBY's own refusal is the caller's input, as the embedded store reports it.
            if case .server(let message) = error, message.contains("overflow") {
                throw .invalidArgument("counter + \(delta) overflows Int64")
            }
            throw StoreError(error)
        }
        guard case .array(let parts) = reply, parts.count == 2, let value = parts[0].integer, case .integer(let ttl) = parts[1] else {
            throw .backend("counter script answered \(reply)")
        }
        return CounterValue(value: value, resetsInMilliseconds: ttl)
    }

    public func value(_ key: String) async throws(StoreError) -> Int64 {
        try StoreLimits.check(key: key)
        let reply = try await client.storeSend(["GET", self.key(key)])
        switch reply {
        case .null: return 0
        case .string:
            guard let value = reply.integer else { throw .backend("counter holds \(reply)") }
            return value
        default: throw .backend("GET answered \(reply)")
        }
    }

    public func reset(_ key: String) async throws(StoreError) {
        try StoreLimits.check(key: key)
        _ = try await client.storeSend(["DEL", self.key(key)])
    }
}
