import COpenSSL
import HubIO

/// Typed helpers for the commands the hub uses most. Each is `send` plus a check of the reply's
/// kind: a reply of the wrong kind is `.unexpectedReply`, never a crash or a silent default.
extension RedisClient {
    /// `GET key`: the value's bytes, `nil` when the key does not exist.
    public func get(_ key: RedisArgument, timeout: Duration? = nil) async throws(RedisError) -> [UInt8]? {
        let reply = try await send(["GET", key], timeout: timeout)
        switch reply {
        case .string(let bytes): return bytes
        case .null: return nil
        default: throw .unexpectedReply(reply)
        }
    }

    /// `GET key` decoded as UTF-8.
    public func getString(_ key: RedisArgument, timeout: Duration? = nil) async throws(RedisError) -> String? {
        try await get(key, timeout: timeout).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `SET key value [EX s | PX ms]`. Whole seconds go as `EX`, anything finer as `PX`.
    public func set(_ key: RedisArgument, _ value: RedisArgument, ex: Duration? = nil, timeout: Duration? = nil) async throws(RedisError) {
        var args: [RedisArgument] = ["SET", key, value]
        if let ex { args += Self.expiryArguments(ex) }
        let reply = try await send(args, timeout: timeout)
        guard case .status = reply else { throw .unexpectedReply(reply) }
    }

    /// `SET key value NX [EX|PX]`: true when the key was set, false when it already existed.
    public func setIfAbsent(_ key: RedisArgument, _ value: RedisArgument, ex: Duration? = nil, timeout: Duration? = nil) async throws(RedisError) -> Bool {
        var args: [RedisArgument] = ["SET", key, value, "NX"]
        if let ex { args += Self.expiryArguments(ex) }
        let reply = try await send(args, timeout: timeout)
        switch reply {
        case .status: return true
        case .null: return false
        default: throw .unexpectedReply(reply)
        }
    }

    /// `INCR key`: the new value.
    public func incr(_ key: RedisArgument, timeout: Duration? = nil) async throws(RedisError) -> Int64 {
        try integer(await send(["INCR", key], timeout: timeout))
    }

    /// `INCRBY key delta`: the new value.
    public func incr(_ key: RedisArgument, by delta: Int, timeout: Duration? = nil) async throws(RedisError) -> Int64 {
        try integer(await send(["INCRBY", key, RedisArgument(delta)], timeout: timeout))
    }

    /// `EXPIRE key s` (or `PEXPIRE key ms` below a second's precision): true when the key exists.
    public func expire(_ key: RedisArgument, _ ttl: Duration, timeout: Duration? = nil) async throws(RedisError) -> Bool {
        let ms = Int(ttl.nanoseconds / 1_000_000)
        let args: [RedisArgument] = ms % 1000 == 0 ? ["EXPIRE", key, RedisArgument(ms / 1000)] : ["PEXPIRE", key, RedisArgument(ms)]
        return try integer(await send(args, timeout: timeout)) == 1
    }

    /// `DEL key...`: how many keys existed.
    public func del(_ keys: [RedisArgument], timeout: Duration? = nil) async throws(RedisError) -> Int {
        Int(try integer(await send(["DEL"] + keys, timeout: timeout)))
    }

    /// `PUBLISH channel message`: how many subscribers received it (on this node).
    public func publish(_ channel: RedisArgument, _ message: RedisArgument, timeout: Duration? = nil) async throws(RedisError) -> Int {
        Int(try integer(await send(["PUBLISH", channel, message], timeout: timeout)))
    }

    /// `PING`: round-trips to the server (a readiness probe that exercises the connection).
    public func ping(timeout: Duration? = nil) async throws(RedisError) {
        let reply = try await send(["PING"], timeout: timeout)
        guard case .status = reply else { throw .unexpectedReply(reply) }
    }

    private func integer(_ reply: RedisValue) throws(RedisError) -> Int64 {
        guard case .integer(let i) = reply else { throw .unexpectedReply(reply) }
        return i
    }

    static func expiryArguments(_ ttl: Duration) -> [RedisArgument] {
        let ms = Int(ttl.nanoseconds / 1_000_000)
        return ms % 1000 == 0 ? ["EX", RedisArgument(ms / 1000)] : ["PX", RedisArgument(max(ms, 1))]
    }
}

/// A Lua script, identified by the SHA1 of its source as Redis does.
///
/// The digest is computed locally (OpenSSL's `EVP_Digest`, once, at creation), so the first
/// call can already be an `EVALSHA`: no `SCRIPT LOAD` round trip at start-up and no state to
/// lose. When Redis does not know the script (restarted, `SCRIPT FLUSH`, another node), the
/// `NOSCRIPT` reply makes the client fall back to `EVAL` once, which also loads it.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source, sent only on the `NOSCRIPT` fallback.
    public let source: String
    /// Lower-case hex SHA1 of `source`, the name `EVALSHA` uses.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        sha1 = Self.sha1Hex(Array(source.utf8))
    }

    static func sha1Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha1(), nil)
        }
        precondition(ok == 1 && length == 20, "EVP_Digest(SHA1) failed")
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(40)
        for byte in digest.prefix(20) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension RedisClient {
    /// Runs `script` with `EVALSHA`; on `NOSCRIPT` retries once with `EVAL` inside the same
    /// timeout. `completion` runs on the loop exactly once. Any thread.
    public func eval(_ script: RedisScript, keys: [RedisArgument] = [], args: [RedisArgument] = [],
                     timeout: Duration? = nil, completion: @escaping RedisCompletion) {
        // One array, built once: EVALSHA sha numkeys keys... args...; the fallback swaps the
        // first two for EVAL source.
        var command: [RedisArgument] = []
        command.reserveCapacity(3 + keys.count + args.count)
        command.append("EVALSHA")
        command.append(RedisArgument(script.sha1))
        command.append(RedisArgument(keys.count))
        command.append(contentsOf: keys)
        command.append(contentsOf: args)
        let budget = (timeout ?? configuration.commandTimeout)?.nanoseconds
        let started = budget == nil ? 0 : monotonicNanoseconds()
        send(command, timeout: timeout) { result in
            guard case .failure(let error) = result, error.serverCode == "NOSCRIPT" else {
                completion(result)
                return
            }
            // The fallback gets what is left of the caller's budget, not a fresh one.
            var remaining: Duration?
            if let budget {
                let spent = monotonicNanoseconds() &- started
                guard spent < budget else { completion(.failure(.timeout)); return }
                remaining = .nanoseconds(Int64(budget - spent))
            }
            var fallback = command
            fallback[0] = "EVAL"
            fallback[1] = RedisArgument(script.source)
            self.send(fallback, timeout: remaining, completion: completion)
        }
    }

    /// `eval` for async callers.
    public func eval(_ script: RedisScript, keys: [RedisArgument] = [], args: [RedisArgument] = [],
                     timeout: Duration? = nil) async throws(RedisError) -> RedisValue {
        let result: Result<RedisValue, RedisError> = await withCheckedContinuation { continuation in
            eval(script, keys: keys, args: args, timeout: timeout) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }
}
