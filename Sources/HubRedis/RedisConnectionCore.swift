import HubIO
import HubTelemetry
import Logging
import Synchronization

/// The life of one logical Redis connection on one loop, shared by `RedisClient` and
/// `RedisSubscriber`: connect, `AUTH`/`SELECT`/`PING`, serve, notice the loss, back off, reconnect,
/// for as long as the owner wants. Also the FIFO of outstanding commands and its timeout sweep.
///
///     idle ──start──▶ connecting ──TCP up──▶ handshaking ──AUTH/SELECT/PING ok──▶ ready
///                        ▲  │ refused / timeout        │ rejected / timeout          │ lost
///                        │  ▼                          ▼                             ▼
///                        └── backingOff ◀──────────────────────────────────────────────┘
///     any ──close──▶ closed
///
/// Only `ready` accepts commands; in every other state `send` fails at once with
/// `.notConnected` (the caller decides whether to retry), so nothing queues without bound
/// while Redis is away. Loop thread only, except `isReady`.
final class RedisConnectionCore: HiredisConnectionDelegate {
    enum State: Equatable { case idle, connecting, handshaking, ready, backingOff, closed }

    let loop: EventLoop
    let configuration: RedisConfiguration
    let metrics: RedisMetrics?
    var logger: Logger

    /// Commands that would break the one-reply-per-command order this queue relies on.
    /// Accepted only from the subscriber, which sends them with tag 0.
    var rejectsPubSubCommands = true
    /// Called on the loop when the connection becomes ready (after the handshake).
    var onReady: (() -> Void)?
    /// Called on the loop when a ready connection is lost (not on failed attempts).
    var onLost: (() -> Void)?
    /// Pub/sub pushes (replies to commands sent with tag 0).
    var onPush: ((RedisValue) -> Void)?

    private(set) var state: State = .idle
    private var connection: HiredisConnection?
    private var pending = PendingCommands()
    private var nextSeq: UInt64 = 1
    private var backoff: ReconnectBackoff
    private var reconnectTimer: TimerHandle?
    private var sweepTimer: TimerHandle?
    private var attemptDeadline: UInt64 = 0
    private var everReady = false
    private let timeoutNs: UInt64?
    private let sweepNs: UInt64
    private let connectTimeoutNs: UInt64
    private let stallNs: UInt64
    /// Statistics of connections that are gone, so totals survive reconnects.
    private var retiredStatistics = HiredisConnection.Statistics()
    private let ready = Atomic<Bool>(false)

    init(configuration: RedisConfiguration, loop: EventLoop, registry: MetricsRegistry?, logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        self.logger = logger
        metrics = registry.map { RedisMetrics(registry: $0, name: configuration.name, shard: loop.index) }
        backoff = ReconnectBackoff(base: configuration.reconnectBaseDelay, cap: configuration.reconnectMaxDelay)
        timeoutNs = configuration.commandTimeout?.nanoseconds
        sweepNs = max(configuration.sweepInterval.nanoseconds, 1_000_000)
        connectTimeoutNs = configuration.connectTimeout.nanoseconds
        stallNs = configuration.stallTimeout.nanoseconds
    }

    deinit {
        // Owners close on the loop before letting go (see RedisClient.deinit); this is the
        // backstop that keeps the connection's unowned delegate from dangling.
        if let old = detachConnection() { old.close() }
    }

    /// True while commands can be sent. Any thread.
    var isReady: Bool { ready.load(ordering: .acquiring) }

    /// Connection-level counters summed over every connection this core has had.
    var statistics: HiredisConnection.Statistics {
        var s = retiredStatistics
        if let c = connection?.statistics {
            s.commands += c.commands
            s.writeEvents += c.writeEvents
            s.readEvents += c.readEvents
        }
        return s
    }

    // MARK: lifecycle

    func start() {
        guard state == .idle else { return }
        connect()
    }

    /// Stops for good: outstanding commands fail with `.closed`, the socket is closed, no more
    /// reconnects.
    func close() {
        guard state != .closed else { return }
        state = .closed
        ready.store(false, ordering: .releasing)
        reconnectTimer?.cancel()
        reconnectTimer = nil
        sweepTimer?.cancel()
        sweepTimer = nil
        let old = detachConnection()
        failAll(.closed)
        old?.close()
    }

    private func connect() {
        guard state != .closed else { return }
        state = .connecting
        attemptDeadline = loop.now &+ connectTimeoutNs
        do {
            connection = try HiredisConnection(host: configuration.host, port: configuration.port, loop: loop, delegate: self)
            armSweep()
        } catch {
            logger.warning("redis connect failed", metadata: ["client": "\(configuration.name)", "error": "\(error)"])
            metrics?.connectFailures.increment(shard: metrics?.shard)
            scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        guard state != .closed else { return }
        state = .backingOff
        let delay = backoff.nextDelay()
        // Timers and handshake completions hold the core strongly (no weak reference: see
        // HiredisConnection on side tables); each is released when it fires or is answered.
        reconnectTimer = loop.schedule(after: delay) {
            self.reconnectTimer = nil
            if self.state == .backingOff { self.connect() }
        }
    }

    /// Forgets the current connection without closing it, returning it so the caller can.
    private func detachConnection() -> HiredisConnection? {
        guard let old = connection else { return nil }
        let s = old.statistics
        retiredStatistics.commands += s.commands
        retiredStatistics.writeEvents += s.writeEvents
        retiredStatistics.readEvents += s.readEvents
        old.delegate = nil
        connection = nil
        return old
    }

    /// The connection is unusable: answer everything outstanding, then back off and reconnect.
    /// `close` is true when we are the ones giving up on it (timeouts, a bad handshake), false
    /// when hiredis already tore it down.
    private func lose(error: RedisError, reason: String, close: Bool) {
        let wasReady = state == .ready
        let old = detachConnection()
        ready.store(false, ordering: .releasing)
        if wasReady {
            logger.warning("redis connection lost", metadata: ["client": "\(configuration.name)", "reason": "\(reason)"])
        } else {
            metrics?.connectFailures.increment(shard: metrics?.shard)
            logger.debug("redis connect attempt failed", metadata: ["client": "\(configuration.name)", "reason": "\(reason)"])
        }
        // State first: completions that send again see `backingOff` and fail fast.
        scheduleReconnect()
        failAll(error)
        if close { old?.close() }
        if wasReady { onLost?() }
    }

    private func failAll(_ error: RedisError) {
        let waiting = pending.removeAll()
        if !waiting.isEmpty {
            metrics?.errors.increment(by: waiting.count, shard: metrics?.shard)
        }
        for completion in waiting { completion(.failure(error)) }
    }

    private func becomeReady() {
        state = .ready
        backoff.reset()
        if everReady {
            metrics?.reconnects.increment(shard: metrics?.shard)
            logger.info("redis reconnected", metadata: ["client": "\(configuration.name)"])
        }
        everReady = true
        ready.store(true, ordering: .releasing)
        onReady?()
    }

    // MARK: handshake

    /// `AUTH`, `SELECT`, `PING`, pipelined; ready when the last one answers. The `PING` makes
    /// "ready" mean "the server answers", not just "the kernel accepted the TCP connection"
    /// (which it does for a frozen or still-loading Redis too).
    private func handshake() {
        state = .handshaking
        var steps: [[RedisArgument]] = []
        if let password = configuration.password {
            if let user = configuration.username {
                steps.append(["AUTH", RedisArgument(user), RedisArgument(password)])
            } else {
                steps.append(["AUTH", RedisArgument(password)])
            }
        }
        if configuration.database != 0 {
            steps.append(["SELECT", RedisArgument(configuration.database)])
        }
        steps.append(["PING"])
        var remaining = steps.count
        for step in steps {
            enqueue(step, deadline: attemptDeadline) { result in
                guard self.state == .handshaking else { return }
                switch result {
                case .success:
                    remaining -= 1
                    if remaining == 0 { self.becomeReady() }
                case .failure(let error):
                    // A wrong password or database will not fix itself quickly, but the server
                    // may be mid-restart with a new config: keep retrying with backoff, and say
                    // so at error level on the first failure and every 16th after it.
                    let level: Logger.Level = self.backoff.attempt % 16 == 0 ? .error : .debug
                    self.logger.log(level: level, "redis handshake failed",
                                    metadata: ["client": "\(self.configuration.name)", "command": "\(step[0])", "error": "\(error)"])
                    self.lose(error: .connectionLost, reason: "\(step[0]) failed: \(error)", close: true)
                }
            }
        }
    }

    // MARK: sending

    /// Sends one command; `completion` runs on the loop exactly once. Loop thread only.
    func send(_ args: [RedisArgument], timeout: UInt64?, completion: @escaping RedisCompletion) {
        guard state == .ready else {
            metrics?.errors.increment(shard: metrics?.shard)
            completion(.failure(state == .closed ? .closed : .notConnected))
            return
        }
        guard let name = args.first else {
            completion(.failure(.invalidCommand("empty command")))
            return
        }
        if rejectsPubSubCommands && Self.changesReplyProtocol(name, args) {
            completion(.failure(.invalidCommand("\(name) changes the reply protocol; use RedisSubscriber for pub/sub")))
            return
        }
        guard pending.count < configuration.maxPendingCommands else {
            metrics?.errors.increment(shard: metrics?.shard)
            completion(.failure(.backpressure))
            return
        }
        let ns = timeout ?? timeoutNs
        enqueue(args, deadline: ns.map { loop.now &+ $0 } ?? .max, completion: completion)
    }

    /// Sends a pub/sub command (`SUBSCRIBE` …) whose replies arrive as pushes, not through the
    /// FIFO. Returns false when not ready.
    func sendPush(_ args: [RedisArgument]) -> Bool {
        guard state == .ready, let connection else { return false }
        return connection.command(args, tag: 0)
    }

    private func enqueue(_ args: [RedisArgument], deadline: UInt64, completion: @escaping RedisCompletion) {
        guard let connection else {
            completion(.failure(.notConnected))
            return
        }
        let seq = nextSeq
        nextSeq &+= 1
        if nextSeq == 0 { nextSeq = 1 }  // tag 0 means "push"
        guard connection.command(args, tag: UInt(seq)) else {
            // hiredis refuses while it tears the context down: the loss is being reported.
            metrics?.errors.increment(shard: metrics?.shard)
            completion(.failure(.connectionLost))
            return
        }
        metrics?.commands.increment(shard: metrics?.shard)
        pending.append(PendingCommand(seq: seq, deadline: deadline, start: loop.now, completion: completion))
        if deadline != .max { armSweep() }
    }

    static func changesReplyProtocol(_ name: RedisArgument, _ args: [RedisArgument]) -> Bool {
        // Dispatch on the length first: almost every command is rejected by one comparison.
        switch name.count {
        case 6:
            // CLIENT REPLY OFF/SKIP would leave commands without replies and the FIFO misaligned.
            return name.equalsIgnoringCase("CLIENT") && args.count > 1 && args[1].equalsIgnoringCase("REPLY")
        case 7: return name.equalsIgnoringCase("MONITOR")
        case 9: return name.equalsIgnoringCase("SUBSCRIBE")
        case 10: return name.equalsIgnoringCase("PSUBSCRIBE") || name.equalsIgnoringCase("SSUBSCRIBE")
        case 11: return name.equalsIgnoringCase("UNSUBSCRIBE")
        case 12: return name.equalsIgnoringCase("PUNSUBSCRIBE") || name.equalsIgnoringCase("SUNSUBSCRIBE")
        default: return false
        }
    }

    // MARK: sweep

    /// One tick per `sweepInterval` while something has a deadline: command timeouts, connect
    /// timeouts, stall detection. Never a timer per command.
    private func armSweep() {
        guard sweepTimer == nil, state != .closed else { return }
        sweepTimer = loop.schedule(after: sweepNs) {
            self.sweepTimer = nil
            self.sweep()
        }
    }

    private func sweep() {
        let now = loop.now
        if (state == .connecting || state == .handshaking) && now >= attemptDeadline {
            lose(error: .connectionLost, reason: "connect timed out", close: true)
        }
        let expired = pending.expire(now: now)
        if !expired.isEmpty {
            metrics?.timeouts.increment(by: expired.count, shard: metrics?.shard)
            for completion in expired { completion(.failure(.timeout)) }
        }
        if state == .ready, let since = pending.oldestTimedOutAt, now &- since >= stallNs {
            lose(error: .connectionLost, reason: "no reply for \((now &- since) / 1_000_000) ms after a timeout", close: true)
        }
        if pending.hasDeadlines || pending.oldestTimedOutAt != nil || state == .connecting || state == .handshaking {
            armSweep()
        }
    }

    // MARK: HiredisConnectionDelegate

    func hiredisDidConnect(_ c: HiredisConnection) {
        guard c === connection, state == .connecting else { return }
        handshake()
    }

    func hiredis(_ c: HiredisConnection, didReceive reply: RedisValue?, tag: UInt) {
        guard c === connection else { return }
        guard let reply else {
            // hiredis is failing every callback before freeing the context: the first one tells
            // us the connection is gone, and we answer all outstanding commands at once.
            let failure = c.failure
            lose(error: failure.isProtocolError ? .protocolError(failure.message) : .connectionLost,
                 reason: failure.message, close: false)
            return
        }
        if tag == 0 {
            onPush?(reply)
            return
        }
        guard let entry = pending.popFirst(), entry.seq == UInt64(tag) else {
            // Cannot happen while hiredis and the queue see the same commands; if it does, every
            // later reply would go to the wrong sender, so drop the connection instead.
            logger.critical("redis reply order mismatch", metadata: ["client": "\(configuration.name)", "tag": "\(tag)"])
            lose(error: .connectionLost, reason: "reply order mismatch", close: true)
            return
        }
        guard let completion = entry.completion else { return }  // timed out: drop the late reply
        if let metrics {
            metrics.latency.observe(nanoseconds: Int(loop.now &- entry.start), shard: metrics.shard)
        }
        if case .error(let message) = reply {
            metrics?.errors.increment(shard: metrics?.shard)
            completion(.failure(.server(message)))
        } else {
            completion(.success(reply))
        }
    }

    func hiredisDidClose(_ c: HiredisConnection, error: HiredisConnection.Failure) {
        guard c === connection else { return }
        lose(error: error.isProtocolError ? .protocolError(error.message) : .connectionLost, reason: error.message, close: false)
    }
}

/// The metric series of one Redis client or subscriber, labelled `client=<name>`. Updated only
/// on the client's loop thread, so each update is a plain store into that loop's shard.
struct RedisMetrics {
    let commands: Counter
    let errors: Counter
    let timeouts: Counter
    let reconnects: Counter
    let connectFailures: Counter
    let latency: Histogram
    /// The loop's shard index (`nil` never: clients live on a loop).
    let shard: Int

    init(registry: MetricsRegistry, name: String, shard: Int) {
        let labels = [("client", name)]
        commands = registry.counter("devicehub_redis_commands_total", help: "Redis commands sent.", labels: labels)
        errors = registry.counter("devicehub_redis_errors_total",
                                  help: "Redis commands that failed other than by timeout: server error replies, connection lost, not connected, backpressure.",
                                  labels: labels)
        timeouts = registry.counter("devicehub_redis_timeouts_total", help: "Redis commands that got no reply within their timeout.", labels: labels)
        reconnects = registry.counter("devicehub_redis_reconnects_total", help: "Redis connections re-established after a loss.", labels: labels)
        connectFailures = registry.counter("devicehub_redis_connect_failures_total",
                                           help: "Redis connection attempts that failed (refused, timed out, AUTH/SELECT rejected).", labels: labels)
        latency = registry.histogram("devicehub_redis_command_seconds",
                                     help: "Redis command latency from send to reply, at event-loop iteration granularity.", labels: labels)
        self.shard = shard
    }
}

/// Exponential reconnect delays with jitter: base, 2×base, 4×base … capped, each drawn
/// uniformly from the upper half of its step ("equal jitter").
///
/// Why jitter: when Redis restarts, every hub process (and every loop in it) loses its
/// connections in the same millisecond; identical delays would bring them back in one burst.
/// Why the upper half rather than 0...step: a delay near zero after a refused connect would
/// spin the loop against a server that is still starting.
struct ReconnectBackoff {
    let base: UInt64
    let cap: UInt64
    private(set) var attempt = 0

    init(base: Duration, cap: Duration) {
        self.base = max(base.nanoseconds, 1_000_000)
        self.cap = max(cap.nanoseconds, self.base)
    }

    /// The delay before the next attempt, in nanoseconds; advances the step.
    mutating func nextDelay<R: RandomNumberGenerator>(using rng: inout R) -> UInt64 {
        let step = currentStep
        attempt += 1
        return step / 2 + UInt64.random(in: 0...(step / 2), using: &rng)
    }

    mutating func nextDelay() -> UInt64 {
        var rng = SystemRandomNumberGenerator()
        return nextDelay(using: &rng)
    }

    /// The un-jittered delay of the current attempt.
    var currentStep: UInt64 {
        // 2^attempt saturates long before it overflows: stop doubling at the cap.
        var step = base
        var i = 0
        while i < attempt && step < cap {
            step = step &* 2
            i += 1
        }
        return min(step, cap)
    }

    /// Back to the first step, after a connection became ready.
    mutating func reset() { attempt = 0 }
}
