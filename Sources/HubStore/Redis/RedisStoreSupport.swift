import HubRedis

extension StoreError {
    /// How a Redis failure reads to the domain: connection trouble and back-pressure are
    /// `unavailable` (503, retry), a timeout is `timeout`, anything else is a `backend` bug.
    init(_ error: RedisError) {
        switch error {
        case .notConnected, .connectionLost, .backpressure, .closed: self = .unavailable(error.description)
        case .timeout: self = .timeout
        case .server, .protocolError, .unexpectedReply, .invalidCommand: self = .backend(error.description)
        }
    }
}

/// Prefixes every key a Redis-backed store touches, so that several hubs (or test runs) can
/// share one Redis database. `protocol/redis-keys.md` lists the keys under it.
public struct RedisNamespace: Sendable, Hashable {
    /// Ends with `:` (e.g. `dh:`).
    public let prefix: String

    /// `prefix` must not contain `{`: the stores put hash tags (`{qb7}`, `{12:room:abc}`) after
    /// it, and Redis Cluster hashes the first `{…}` of a key.
    public init(_ prefix: String = "dh") {
        precondition(!prefix.contains("{"), "a Redis namespace must not contain '{' (it would be taken as the hash tag)")
        self.prefix = prefix.hasSuffix(":") ? prefix : prefix + ":"
    }

    /// `prefix + kind + ":" + name`, e.g. `dh:kv:session:abc`.
    public func key(_ kind: String, _ name: String) -> String { prefix + kind + ":" + name }
}

extension RedisClient {
    /// `send` that throws `StoreError`.
    func storeSend(_ args: [RedisArgument]) async throws(StoreError) -> RedisValue {
        do { return try await send(args) } catch { throw StoreError(error) }
    }

    /// `eval` that throws `StoreError`.
    func storeEval(_ script: RedisScript, keys: [RedisArgument], args: [RedisArgument]) async throws(StoreError) -> RedisValue {
        do { return try await eval(script, keys: keys, args: args) } catch { throw StoreError(error) }
    }
}
