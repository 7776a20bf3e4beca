import HubIO
import HubTelemetry
import Logging

/// Redis connections on the hub's event loops, over hiredis's async API: one connection per
/// loop it is given (shared nothing).
///
/// A command sent from one of those loops goes out on that loop's own connection and its reply
/// is handled on the same thread, so a request handler running on loop *n* talks to Redis
/// without any thread hop. A command sent from anywhere else uses the first loop's connection
/// (hopping on with `loop.execute`). Commands sent in the same loop iteration leave in one
/// `write`, so a burst of sends pipelines by itself, with no batching API. Replies come back in
/// order per connection.
///
/// Each connection reconnects by itself, with exponential backoff and jitter. While it has no
/// connection, `send` fails at once with `.notConnected` (nothing is queued): callers that
/// need the command retry, `isConnected` feeds `/readyz`. Every command has a timeout (the
/// configuration's default unless given), enforced by one coarse sweep per connection.
///
///     let redis = RedisClient(configuration: try RedisConfiguration(url: url), loops: group.loops)
///     redis.start()
///     try await redis.set("device:42:seen", "1", ex: .seconds(60))
///
/// With `configuration.cluster` (a `redis+cluster://` URL) the client talks to a Redis Cluster
/// instead: it learns the slot map from the URL's node and sends each command to the master
/// owning its first key's slot, over one client like this one per master
/// (`RedisClusterRouter`). Callers see the same API; multi-key commands must keep their keys in
/// one slot (hash tags), as Redis requires.
public final class RedisClient: @unchecked Sendable {
    // @unchecked: `cores`, `coreByLoop` and `cluster` are set in init and never change; each
    // core is used only on its own loop's thread (see `send`), `isReady` is atomic, and the
    // router documents its own confinement.

    /// The first loop: where commands from other threads go.
    public var loop: EventLoop { loops[0] }
    public let configuration: RedisConfiguration
    /// The loops given at init, in order.
    let loops: [EventLoop]
    /// One connection per loop, in the order the loops were given (none in cluster mode).
    let cores: [RedisConnectionCore]
    /// The slot map and the masters' clients, in cluster mode.
    let cluster: RedisClusterRouter?
    /// True when this client routes commands over a Redis Cluster.
    public var isCluster: Bool { cluster != nil }
    /// Index into `cores` by `EventLoop.index` (-1: no connection on that loop).
    private let coreByLoop: [Int]
    var core: RedisConnectionCore { cores[0] }

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

    /// A client with one connection per loop in `loops`, not yet connected; call `start()`.
    /// `registry`, when given, receives the client's metrics labelled with `configuration.name`
    /// (sharded by loop, so each connection counts into its own loop's shard).
    public init(configuration: RedisConfiguration, loops: [EventLoop], registry: MetricsRegistry? = nil,
                logger: Logger = Logger(label: "devicehub.redis")) {
        precondition(!loops.isEmpty, "a Redis client needs at least one loop")
        self.configuration = configuration
        self.loops = loops
        if configuration.cluster {
            cluster = RedisClusterRouter(configuration: configuration, loops: loops, registry: registry, logger: logger)
            cores = []
            coreByLoop = []
            return
        }
        cluster = nil
        cores = loops.map { RedisConnectionCore(configuration: configuration, loop: $0, registry: registry, logger: logger) }
        var byLoop = [Int](repeating: -1, count: (loops.map(\.index).max() ?? 0) + 1)
        for (i, l) in loops.enumerated() where byLoop[l.index] < 0 { byLoop[l.index] = i }
        coreByLoop = byLoop
    }

    /// A client with a single connection on `loop`.
    public convenience init(configuration: RedisConfiguration, loop: EventLoop, registry: MetricsRegistry? = nil,
                            logger: Logger = Logger(label: "devicehub.redis")) {
        self.init(configuration: configuration, loops: [loop], registry: registry, logger: logger)
    }

    deinit {
        cluster?.close()
        // hiredis and the connection are loop-thread only, and the last reference may be dropped
        // anywhere: close on the loop, which keeps the core alive until then.
        for core in cores { core.loop.execute { core.close() } }
    }

    /// Shorthand for `init(configuration: RedisConfiguration(url: url), ...)`.
    public convenience init(url: String, loop: EventLoop, registry: MetricsRegistry? = nil) throws(RedisURLError) {
        self.init(configuration: try RedisConfiguration(url: url), loop: loop, registry: registry)
    }

    /// The connection a caller on this thread should use: its own loop's, else the first.
    @inline(__always)
    private func coreForCaller() -> (core: RedisConnectionCore, local: Bool) {
        if let current = EventLoop.current, current.index < coreByLoop.count {
            let i = coreByLoop[current.index]
            if i >= 0, cores[i].loop === current { return (cores[i], true) }
        }
        return (cores[0], false)
    }

    /// Starts connecting (and keeps reconnecting until `close()`). Any thread.
    public func start() {
        cluster?.start()
        forEachCore { $0.start() }
    }

    /// Closes the connection for good; outstanding commands fail with `.closed`. Any thread.
    public func close() {
        cluster?.close()
        forEachCore { $0.close() }
    }

    /// True while commands can be sent (connected, and `AUTH`/`SELECT`/`PING` answered). Any thread; it is
    /// the last known state, so a command may still fail with `.connectionLost`.
    /// With several loops: true only when every loop's connection is ready.
    /// In cluster mode: true once the slot map is known and every master's connections are ready.
    public var isConnected: Bool {
        if let cluster { return cluster.isConnected }
        return cores.allSatisfy(\.isReady)
    }

    /// Called on the loop each time the connection becomes ready (first connect and every
    /// reconnect) and each time a ready connection is lost. Set before `start()`.
    /// With several loops, each connection reports its own changes, on its own loop. In cluster
    /// mode nothing is reported (poll `isConnected`).
    public func onConnectionChange(_ handler: @escaping (Bool) -> Void) {
        forEachCore { core in
            core.onReady = { handler(true) }
            core.onLost = { handler(false) }
        }
    }

    // MARK: sending

    /// Sends a command; `completion` runs exactly once, on the loop of the connection used (the
    /// caller's own loop when it is one of the client's): with the reply, or with `.server` for
    /// an error reply, `.timeout`, `.connectionLost`, `.notConnected`...
    /// `timeout: nil` uses `configuration.commandTimeout`. Any thread.
    public func send(_ args: [RedisArgument], timeout: Duration? = nil, completion: @escaping RedisCompletion) {
        send(args, timeoutNs: timeout?.nanoseconds, completion: completion)
    }

    /// `send` with the timeout in nanoseconds (nil: the configuration's).
    func send(_ args: [RedisArgument], timeoutNs ns: UInt64?, completion: @escaping RedisCompletion) {
        if let cluster {
            cluster.send(args, timeout: ns, completion: completion)
            return
        }
        let (core, local) = coreForCaller()
        if local {
            core.send(args, timeout: ns, completion: completion)
        } else {
            core.loop.execute { core.send(args, timeout: ns, completion: completion) }
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
        var total = Statistics(commands: 0, writeEvents: 0, readEvents: 0)
        for client in cluster?.nodeClients ?? [] {
            let s = await client.statistics()
            total.commands += s.commands
            total.writeEvents += s.writeEvents
            total.readEvents += s.readEvents
        }
        for core in cores {
            let s = await withCheckedContinuation { continuation in
                core.loop.execute { continuation.resume(returning: core.statistics) }
            }
            total.commands += s.commands
            total.writeEvents += s.writeEvents
            total.readEvents += s.readEvents
        }
        return total
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

    private func forEachCore(_ body: @escaping (RedisConnectionCore) -> Void) {
        for core in cores {
            if core.loop.inLoop { body(core) } else { core.loop.execute { body(core) } }
        }
    }
}
