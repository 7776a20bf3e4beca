import HubIO
import HubTelemetry
import Logging

/// A Redis connection that lives on one `EventLoop`, over hiredis's async API.
///
/// Every hiredis call and every completion runs on that loop's thread; `send` may be called
/// from anywhere (off the loop it hops on with `loop.execute`). Commands sent in the same loop
/// iteration leave in one `write`, so a burst of sends pipelines by itself, with no batching
/// API. Replies come back in order.
///
/// The client reconnects by itself, with exponential backoff and jitter. While it has no
/// connection, `send` fails at once with `.notConnected` (nothing is queued): callers that
/// need the command retry, `isConnected` feeds `/readyz`. Every command has a timeout (the
/// configuration's default unless given), enforced by one coarse sweep per client.
///
///     let redis = RedisClient(configuration: try RedisConfiguration(url: url), loop: loop)
///     redis.start()
///     try await redis.set("device:42:seen", "1", ex: .seconds(60))
public final class RedisClient: @unchecked Sendable {
    /// The loop every callback runs on.
    public let loop: EventLoop
    public let configuration: RedisConfiguration
    let core: RedisConnectionCore

    /// Counters that show how commands were batched into socket writes.
    public struct Statistics: Sendable {
        /// Commands handed to hiredis.
        public var commands: Int
        /// Flushes: each hands everything queued so far to one `write` (an end-of-iteration flush,
        /// or an `EPOLLOUT` after a short write).
        public var writeEvents: Int
        /// Read-readiness events handled.
        public var readEvents: Int
    }

    /// A client that is not yet connected; call `start()`. `registry`, when given, receives the
    /// client's metrics labelled with `configuration.name`.
    public init(configuration: RedisConfiguration, loop: EventLoop, registry: MetricsRegistry? = nil,
                logger: Logger = Logger(label: "devicehub.redis")) {
        self.loop = loop
        self.configuration = configuration
        core = RedisConnectionCore(configuration: configuration, loop: loop, registry: registry, logger: logger)
    }

    deinit {
        // hiredis and the connection are loop-thread only, and the last reference may be dropped
        // anywhere: close on the loop, which keeps the core alive until then.
        let core = self.core
        loop.execute { core.close() }
    }

    /// Shorthand for `init(configuration: RedisConfiguration(url: url), ...)`.
    public convenience init(url: String, loop: EventLoop, registry: MetricsRegistry? = nil) throws(RedisURLError) {
        self.init(configuration: try RedisConfiguration(url: url), loop: loop, registry: registry)
    }

    /// Starts connecting (and keeps reconnecting until `close()`). Any thread.
    public func start() {
        onLoop { $0.core.start() }
    }

    /// Closes the connection for good; outstanding commands fail with `.closed`. Any thread.
    public func close() {
        onLoop { $0.core.close() }
    }

    /// True while commands can be sent (connected, and `AUTH`/`SELECT`/`PING` answered). Any thread; it is
    /// the last known state, so a command may still fail with `.connectionLost`.
    public var isConnected: Bool { core.isReady }

    /// Called on the loop each time the connection becomes ready (first connect and every
    /// reconnect) and each time a ready connection is lost. Set before `start()`.
    public func onConnectionChange(_ handler: @escaping (Bool) -> Void) {
        onLoop { client in
            client.core.onReady = { handler(true) }
            client.core.onLost = { handler(false) }
        }
    }

    // MARK: sending

    /// Sends a command; `completion` runs on the client's loop exactly once: with the reply, or
    /// with `.server` for an error reply, `.timeout`, `.connectionLost`, `.notConnected`...
    /// `timeout: nil` uses `configuration.commandTimeout`. Any thread.
    public func send(_ args: [RedisArgument], timeout: Duration? = nil, completion: @escaping RedisCompletion) {
        let ns = timeout?.nanoseconds
        if loop.inLoop {
            core.send(args, timeout: ns, completion: completion)
        } else {
            loop.execute { self.core.send(args, timeout: ns, completion: completion) }
        }
    }

    /// Sends a command and waits for its reply. Any thread or task.
    public func send(_ args: [RedisArgument], timeout: Duration? = nil) async throws(RedisError) -> RedisValue {
        let result: Result<RedisValue, RedisError> = await withCheckedContinuation { continuation in
            send(args, timeout: timeout) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Variadic convenience: `try await redis.send("HSET", "k", "f", "v")`.
    public func send(_ args: RedisArgument..., timeout: Duration? = nil) async throws(RedisError) -> RedisValue {
        try await send(args, timeout: timeout)
    }

    /// Pipelining counters summed over every connection so far. Hops onto the loop.
    public func statistics() async -> Statistics {
        await withCheckedContinuation { continuation in
            onLoop { client in
                let s = client.core.statistics
                continuation.resume(returning: Statistics(commands: s.commands, writeEvents: s.writeEvents, readEvents: s.readEvents))
            }
        }
    }

    /// Waits until the client is connected, polling the ready flag; false after `timeout`.
    /// For start-up and tests: request paths should check `isConnected` and fail fast instead.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !isConnected {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    private func onLoop(_ body: @escaping (RedisClient) -> Void) {
        if loop.inLoop { body(self) } else { loop.execute { body(self) } }
    }
}
