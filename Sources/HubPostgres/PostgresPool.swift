import Foundation
import HubIO
import HubTelemetry
import Logging

/// A bounded set of PostgreSQL connections spread over event loops.
///
/// - Any thread may call `query` (async) or the callback variant, whose completion runs on the
///   caller's loop; a caller on a loop gets a connection of its own loop when one is idle, so
///   the common case never crosses threads.
/// - At most `maxConnections`; callers beyond that wait (FIFO, at most `maxWaiters`, at most
///   `acquireTimeout`) and then fail with `.poolExhausted`. Nothing waits forever.
/// - Failures: a connection that breaks is dropped and replaced; connects that fail back off
///   with jitter. While no connection is alive and the pool is backing off, calls fail at once
///   with `.connection` (so `/readyz` and requests answer 503 immediately instead of piling
///   up), and `isHealthy` is false until a connect succeeds again.
/// - Idle connections watch their socket, so a server shutdown is seen at once; those idle
///   longer than `healthCheckInterval` are checked with `SELECT 1` before reuse.
///
/// Bookkeeping is under one lock, held for a few field updates and never across I/O or
/// callbacks; each connection is touched only on its own loop.
public final class PostgresPool: @unchecked Sendable, PostgresConnectionDelegate {
    public let configuration: PostgresPoolConfiguration
    public let loops: [EventLoop]
    private let sweepers: [PostgresSweeper]
    private let metrics: PostgresPoolMetrics?
    private let logger: Logger

    private struct Waiter {
        let preferred: Int?
        let deadline: UInt64
        let handler: (Result<PostgresConnection, PostgresError>) -> Void
    }

    private let lock = NSLock()
    // All below: under `lock`.
    private var idle: [[PostgresConnection]]
    private var idleCount = 0
    private var live = 0
    private var connecting = 0
    private var waiters: [Waiter] = []
    private var healthy = false
    private var consecutiveFailures = 0
    private var lostSinceSuccess = false
    private var nextConnectAt: UInt64 = 0
    private var lastError: PostgresError?
    private var shutDown = false
    private var nextLoop = 0
    private var reported = (inUse: 0, idle: 0, waiters: 0, up: 0)

    /// Creates the pool and starts its sweeps and its first `minConnections` connects on
    /// `loops` (which must be running, or be started soon).
    public init(configuration: PostgresPoolConfiguration, loops: [EventLoop], metrics registry: MetricsRegistry? = nil,
                logger: Logger = Logger(label: "devicehub.postgres")) {
        precondition(!loops.isEmpty, "a pool needs at least one loop")
        precondition(configuration.maxConnections >= 1)
        self.configuration = configuration
        self.loops = loops
        self.metrics = registry.map { PostgresPoolMetrics(registry: $0) }
        self.logger = logger
        sweepers = loops.map { PostgresSweeper(loop: $0, interval: configuration.connection.sweepInterval) }
        idle = Array(repeating: [], count: loops.count)
        for (i, sweeper) in sweepers.enumerated() {
            sweeper.loop.execute {
                // One loop runs the pool-wide maintenance; every loop checks its own connections.
                sweeper.onSweep = i == 0 ? { [weak self] in self?.maintain() ; self?.checkIdle(shard: i) } : { [weak self] in self?.checkIdle(shard: i) }
                sweeper.start()
            }
        }
        sweepers[0].loop.execute { [weak self] in self?.maintain() }
    }

    deinit {
        // Dropped without `shutdown()`: close the connections anyway (they hold themselves
        // open while registered with their loop) and stop the sweeps.
        for sweeper in sweepers {
            sweeper.loop.execute {
                sweeper.stop()
                for c in sweeper.all { c.close(.connection("the pool was released"), unexpected: false) }
            }
        }
    }

    // MARK: public API

    /// True while the pool has a working connection to the server (for `/readyz`): set by a
    /// successful connect, cleared by a failed connect or a connection the server dropped.
    public var isHealthy: Bool {
        lock.lock(); defer { lock.unlock() }
        return healthy && !shutDown
    }

    /// Counts for diagnostics and tests.
    public var statistics: (open: Int, idle: Int, inUse: Int, connecting: Int, waiters: Int) {
        lock.lock(); defer { lock.unlock() }
        return (live + connecting, idleCount, live - idleCount, connecting, waiters.count)
    }

    /// Runs one parameterized statement on any connection. Callable from any thread.
    public func query(_ sql: String, _ params: [PostgresValue?] = [], timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        let result: Result<PostgresRows, PostgresError> = await withCheckedContinuation { continuation in
            submit(sql, params, timeout: timeout, preferring: currentShard()) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Callback variant for code running on a loop: prefers a connection on `loop`, and calls
    /// `completion` on `loop`.
    public func query(_ sql: String, _ params: [PostgresValue?] = [], timeout: Duration? = nil, on loop: EventLoop,
                      completion: @escaping (Result<PostgresRows, PostgresError>) -> Void) {
        submit(sql, params, timeout: timeout, preferring: shard(of: loop)) { result in
            if loop.inLoop { completion(result) } else { loop.execute { completion(result) } }
        }
    }

    /// Leases one connection for the duration of `body` (several statements in one session,
    /// e.g. with session-level locks). The connection must not be used after `body` returns.
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let value = try await body(connection)
            giveBack(connection)
            return value
        } catch {
            giveBack(connection)
            throw error
        }
    }

    /// Runs `body` inside `BEGIN` … `COMMIT` on one connection; any error thrown by `body` (or
    /// by a statement) rolls back and is rethrown as is. A transaction the server aborted
    /// (an error `body` caught and ignored) is reported as `.server(25P02)` instead of a silent
    /// rollback.
    public func transaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            _ = try await connection.query("BEGIN")
            let value: T
            do {
                value = try await body(connection)
            } catch {
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK") }
                throw error
            }
            let commit = try await connection.query("COMMIT")
            if commit.commandTag == "ROLLBACK" {
                throw PostgresError.server(sqlState: "25P02", message: "the transaction was aborted by an earlier error and has been rolled back")
            }
            return value
        }
    }

    /// Fails waiters, closes every connection, stops the sweeps. Later calls fail with
    /// `.connection`.
    public func shutdown() async {
        let pending: [Waiter] = withLock {
            shutDown = true
            let w = waiters
            waiters.removeAll()
            return w
        }
        for w in pending { w.handler(.failure(.connection("the pool is shut down"))) }
        for sweeper in sweepers {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                sweeper.loop.execute {
                    sweeper.stop()
                    for c in sweeper.all { c.close(.connection("the pool is shut down"), unexpected: false) }
                    continuation.resume()
                }
            }
        }
    }

    // MARK: running statements

    private func submit(_ sql: String, _ params: [PostgresValue?], timeout: Duration?, preferring: Int?,
                        completion: @escaping (Result<PostgresRows, PostgresError>) -> Void) {
        let started = monotonicNanoseconds()
        let encoded: EncodedParameters
        do { encoded = try EncodedParameters(params) } catch {
            metrics?.record(error)
            completion(.failure(error))
            return
        }
        let deadline = (timeout ?? configuration.connection.effectiveQueryTimeout).nanoseconds
        acquire(preferring: preferring) { [self] acquired in
            switch acquired {
            case .failure(let error):
                metrics?.record(error)
                completion(.failure(error))
            case .success(let connection):
                connection.enqueue(PostgresRequest(sql: sql, kind: .parameters(encoded), timeout: deadline) { [self] result in
                    release(connection)
                    if let metrics {
                        metrics.queryLatency.observe(nanoseconds: Int(monotonicNanoseconds() &- started), shard: nil)
                        if case .failure(let error) = result { metrics.record(error) }
                    }
                    completion(result)
                })
            }
        }
    }

    private func lease() async throws(PostgresError) -> PostgresConnection {
        let result: Result<PostgresConnection, PostgresError> = await withCheckedContinuation { continuation in
            acquire(preferring: currentShard()) { continuation.resume(returning: $0) }
        }
        if case .failure(let error) = result { metrics?.record(error) }
        return try result.get()
    }

    private func giveBack(_ connection: PostgresConnection) {
        connection.loop.execute { self.release(connection) }
    }

    // MARK: acquire and release

    private enum AcquireAction {
        case deliver(PostgresConnection)
        case fail(PostgresError)
        case wait(open: Int?)
    }

    /// Finds a connection for `handler`, which runs on the connection's loop on success and
    /// on any thread on failure.
    private func acquire(preferring: Int?, _ handler: @escaping (Result<PostgresConnection, PostgresError>) -> Void) {
        let now = monotonicNanoseconds()
        let action: AcquireAction = withLock {
            if shutDown { return .fail(.connection("the pool is shut down")) }
            if let c = popIdle(preferring: preferring) { return .deliver(c) }
            if waiters.count >= configuration.maxWaiters {
                return .fail(.poolExhausted("all \(configuration.maxConnections) connections busy and \(waiters.count) callers already waiting"))
            }
            if live == 0, connecting == 0, now < nextConnectAt {
                // Nothing alive and backing off: fail fast rather than queue behind a server
                // that is known to be down.
                return .fail(.connection("PostgreSQL unavailable: \(lastError?.description ?? "no connection")"))
            }
            waiters.append(Waiter(preferred: preferring, deadline: now &+ configuration.acquireTimeout.nanoseconds, handler: handler))
            return .wait(open: reserveConnect(now: now, preferring: preferring))
        }
        switch action {
        case .deliver(let c): deliver(c, to: handler, preferring: preferring)
        case .fail(let error): handler(.failure(error))
        case .wait(let open): if let open { openConnection(shard: open) }
        }
    }

    /// Hands `connection` to `handler` on its loop; if it closed on the way (a race with the
    /// server going away), looks for another one.
    private func deliver(_ connection: PostgresConnection, to handler: @escaping (Result<PostgresConnection, PostgresError>) -> Void, preferring: Int?) {
        let run = {
            if connection.isClosed {
                self.acquire(preferring: preferring, handler)
            } else {
                handler(.success(connection))
            }
        }
        if connection.loop.inLoop { run() } else { connection.loop.execute(run) }
    }

    /// Returns a connection to the pool (its loop). Busy (a timed-out statement still
    /// draining) → returned when free; inside a transaction → rolled back first.
    func release(_ connection: PostgresConnection) {
        if connection.isClosed { return }
        if connection.needsRollback {
            connection.query("ROLLBACK") { [self] result in
                if case .failure(let error) = result { connection.close(error, unexpected: false) } else { release(connection) }
            }
            return
        }
        guard connection.isReusable else {
            connection.releasePending = true
            return
        }
        let waiter: Waiter? = withLock {
            if shutDown { return nil }
            if !waiters.isEmpty { return waiters.removeFirst() }
            connection.pooledIdle = true
            idle[connection.poolLoopIndex].append(connection)
            idleCount += 1
            return nil
        }
        if let waiter {
            waiter.handler(.success(connection))
        } else if withLock({ shutDown }) {
            connection.close(.connection("the pool is shut down"), unexpected: false)
        }
    }

    /// Under lock.
    private func popIdle(preferring: Int?) -> PostgresConnection? {
        guard idleCount > 0 else { return nil }
        // LIFO per loop: recently used connections stay warm, unused ones age out to the
        // health check.
        if let p = preferring, let c = idle[p].popLast() {
            c.pooledIdle = false
            idleCount -= 1
            return c
        }
        for k in 0..<idle.count {
            let i = (nextLoop + k) % idle.count
            if let c = idle[i].popLast() {
                nextLoop = i + 1
                c.pooledIdle = false
                idleCount -= 1
                return c
            }
        }
        return nil
    }

    // MARK: opening and losing connections

    /// Under lock: reserves a slot for a new connection if one is wanted and allowed now;
    /// returns the shard to open it on.
    private func reserveConnect(now: UInt64, preferring: Int?) -> Int? {
        guard !shutDown, live + connecting < configuration.maxConnections, now >= nextConnectAt else { return nil }
        // While the server looks down, probe with one connect at a time.
        if !healthy && connecting > 0 { return nil }
        let wanted = max(configuration.minConnections - live, waiters.count)
        guard connecting < wanted else { return nil }
        connecting += 1
        if let preferring { return preferring }
        nextLoop = (nextLoop + 1) % loops.count
        return nextLoop
    }

    private func openConnection(shard: Int) {
        let isReconnect = withLock { lostSinceSuccess || consecutiveFailures > 0 }
        if isReconnect { metrics?.reconnects.increment(shard: nil) }
        let connection = PostgresConnection(configuration: configuration.connection, loop: loops[shard], sweeper: sweepers[shard])
        connection.poolLoopIndex = shard
        connection.delegate = self
        connection.start { [self] result in
            guard case .success = result else { return } // failures arrive via connectionDidClose
            let wasHealthy: Bool = withLock {
                let was = healthy
                connecting -= 1
                live += 1
                connection.poolCountedLive = true
                healthy = true
                consecutiveFailures = 0
                lostSinceSuccess = false
                nextConnectAt = 0
                lastError = nil
                return was
            }
            if !wasHealthy { logger.info("postgres connected", metadata: ["url": "\(redactedURL(configuration.connection.url))"]) }
            release(connection)
        }
    }

    func connectionDidClose(_ connection: PostgresConnection, error: PostgresError, unexpected: Bool) {
        let now = monotonicNanoseconds()
        var failed: [Waiter] = []
        var open: Int?
        let wasHealthy: Bool = withLock {
            let was = healthy
            if connection.pooledIdle {
                connection.pooledIdle = false
                if let i = idle[connection.poolLoopIndex].firstIndex(where: { $0 === connection }) {
                    idle[connection.poolLoopIndex].remove(at: i)
                    idleCount -= 1
                }
            }
            if connection.poolCountedLive {
                connection.poolCountedLive = false
                live -= 1
                if unexpected {
                    healthy = false
                    lostSinceSuccess = true
                    lastError = error
                }
            } else {
                // A connect that failed.
                connecting -= 1
                consecutiveFailures += 1
                healthy = false
                lastError = error
                nextConnectAt = now &+ configuration.backoff(failures: consecutiveFailures)
            }
            if live == 0 && connecting == 0 && !shutDown {
                open = reserveConnect(now: now, preferring: nil)
                if open == nil {
                    // Nobody can serve the waiters before the backoff ends: fail them now.
                    failed = waiters
                    waiters.removeAll()
                }
            }
            return was
        }
        if wasHealthy && unexpected {
            logger.warning("postgres connection lost", metadata: ["error": "\(error)"])
        }
        for w in failed { w.handler(.failure(.connection("PostgreSQL unavailable: \(error)"))) }
        if let open { openConnection(shard: open) }
    }

    func connectionDidBecomeReusable(_ connection: PostgresConnection) {
        release(connection)
    }

    // MARK: maintenance

    /// Every sweep on loop 0: expires waiters, keeps `minConnections` open, retries after
    /// backoff.
    private func maintain() {
        let now = monotonicNanoseconds()
        var expired: [Waiter] = []
        var opens: [Int] = []
        let (isHealthy, error): (Bool, PostgresError?) = withLock {
            if !waiters.isEmpty && waiters[0].deadline <= now {
                waiters.removeAll { w in
                    if w.deadline <= now { expired.append(w); return true }
                    return false
                }
            }
            while let shard = reserveConnect(now: now, preferring: nil) { opens.append(shard) }
            return (healthy, lastError)
        }
        for w in expired {
            let error: PostgresError = isHealthy
                ? .poolExhausted("no connection became free within \(configuration.acquireTimeout)")
                : .connection("PostgreSQL unavailable: \(error?.description ?? "connecting")")
            w.handler(.failure(error))
        }
        for shard in opens { openConnection(shard: shard) }
    }

    /// Every sweep on each loop: idle connections unused for `healthCheckInterval` run
    /// `SELECT 1` before they are handed out again.
    private func checkIdle(shard: Int) {
        let now = sweepers[shard].loop.now
        let interval = configuration.healthCheckInterval.nanoseconds
        let stale: [PostgresConnection] = withLock {
            var out: [PostgresConnection] = []
            idle[shard].removeAll { c in
                if now &- c.lastUsed >= interval { c.pooledIdle = false; out.append(c); return true }
                return false
            }
            idleCount -= out.count
            return out
        }
        if stale.isEmpty { return }
        for c in stale {
            c.query("SELECT 1", timeout: configuration.connection.connectTimeout) { [self] result in
                if case .failure(let error) = result { c.close(error, unexpected: true) } else { release(c) }
            }
        }
    }

    // MARK: helpers

    /// Runs `body` under the lock and publishes the gauges before unlocking.
    private func withLock<T>(_ body: () -> T) -> T {
        lock.lock()
        defer {
            updateGaugesLocked()
            lock.unlock()
        }
        return body()
    }

    private func shard(of loop: EventLoop) -> Int? {
        loops.firstIndex { $0 === loop }
    }

    /// The shard of the loop we are running on, if it is one of ours.
    private func currentShard() -> Int? {
        loops.firstIndex { $0.inLoop }
    }

    /// Publishes the counts to the gauges; call with the lock held (the lock is taken anyway
    /// for the bookkeeping, so this adds no lock round trip to a statement).
    private func updateGaugesLocked() {
        guard let metrics else { return }
        let inUse = live - idleCount
        let up = healthy && !shutDown ? 1 : 0
        if inUse != reported.inUse { metrics.inUse.add(inUse - reported.inUse, shard: nil) }
        if idleCount != reported.idle { metrics.idle.add(idleCount - reported.idle, shard: nil) }
        if waiters.count != reported.waiters { metrics.waiters.add(waiters.count - reported.waiters, shard: nil) }
        if up != reported.up { metrics.up.add(up - reported.up, shard: nil) }
        reported = (inUse, idleCount, waiters.count, up)
    }
}
