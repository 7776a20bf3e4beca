import Foundation
import HubIO

/// A statement waiting in, or running on, a connection.
final class PostgresRequest {
    enum Kind {
        case parameters(EncodedParameters)
        /// Simple protocol, several statements allowed, no parameters (migrations only).
        case script
    }

    let sql: String
    let kind: Kind
    let timeout: UInt64
    /// Loop-clock deadline, set when the request reaches the connection's loop.
    var deadline: UInt64 = 0
    /// The caller was already answered (client-side timeout); the connection only drains the
    /// statement's results so it can be reused.
    var abandoned = false
    var rows: PostgresRows?
    var error: PostgresError?
    let completion: (Result<PostgresRows, PostgresError>) -> Void

    init(sql: String, kind: Kind, timeout: UInt64, completion: @escaping (Result<PostgresRows, PostgresError>) -> Void) {
        self.sql = sql
        self.kind = kind
        self.timeout = timeout
        self.completion = completion
    }
}

/// What a pool hears from its connections (on the connection's loop).
protocol PostgresConnectionDelegate: AnyObject {
    /// The connection was closed. `unexpected` is true when the server or network ended it
    /// (not our own close), which makes the pool doubt the server's health.
    func connectionDidClose(_ connection: PostgresConnection, error: PostgresError, unexpected: Bool)
    /// A connection released while still finishing a timed-out statement is free again.
    func connectionDidBecomeReusable(_ connection: PostgresConnection)
}

/// One PostgreSQL session driven by libpq in non-blocking mode on one `EventLoop`.
///
/// The loop owns the socket's readiness (a `DescriptorWatcher`); libpq owns the socket itself.
/// Connecting: `PQconnectStartParams` off the loop (it may resolve a host name), then
/// `PQconnectPoll` whenever the socket is ready as asked, re-reading `PQsocket` after every step
/// (libpq opens a new socket for each address it tries). Then the session settings
/// (`statement_timeout`, UTC, ISO dates, hex bytea) in one round trip.
///
/// Statements: `PQsendQueryParams`, `PQflush` until 0 (watching for writable only while it
/// returns 1), then on readable `PQconsumeInput` and `PQgetResult` while `PQisBusy` is false,
/// until NULL. No call blocks the loop. An idle connection keeps watching for readable so a
/// server that goes away (shutdown, crash, `pg_terminate_backend`) is noticed at once.
///
/// Statements queue on the connection (FIFO); a pool only hands out idle connections, so the
/// queue matters for a transaction's callers that overlap. Methods are safe from any thread:
/// they hop to the loop. A connection lives until it is closed (by `close()`, its pool, or a
/// failure), even without references: the loop's watcher holds it while it is open.
public final class PostgresConnection: @unchecked Sendable {
    enum State { case connecting, settingUp, ready, closed }

    public let loop: EventLoop
    let configuration: PostgresConfiguration
    /// The loop's deadline sweep (the pool's, or a private one). Held strongly: a connection
    /// may outlive a pool that was dropped without `shutdown()`, and must still be able to
    /// unregister when it closes.
    private let sweeper: PostgresSweeper
    /// Set for a connection made without a pool: its private sweeper stops when it closes.
    private var ownedSweeper: PostgresSweeper?
    weak var delegate: PostgresConnectionDelegate?

    private(set) var state: State = .connecting
    private var pq: LibPQConnection?
    private var watcher: DescriptorWatcher?
    private var queue: [PostgresRequest] = []
    private var current: PostgresRequest?
    /// `PQflush` returned 1: more output is waiting for the socket to be writable.
    private var flushing = false
    private var connectDeadline: UInt64 = 0
    private var drainDeadline: UInt64 = 0
    private var onConnect: ((Result<Void, PostgresError>) -> Void)?
    private var closedWith: PostgresError?

    /// Loop-clock time of the last completed statement (health checks pick long-idle ones).
    var lastUsed: UInt64 = 0
    /// Set by a pool that released the connection while it was still busy: return it to the
    /// pool as soon as it is free.
    var releasePending = false
    /// Pool bookkeeping, read and written only under the pool's lock: which loop shard the
    /// connection belongs to, whether it sits in the idle list, and whether it is counted as
    /// connected (false while connecting).
    var poolLoopIndex = 0
    var pooledIdle = false
    var poolCountedLive = false

    init(configuration: PostgresConfiguration, loop: EventLoop, sweeper: PostgresSweeper) {
        self.configuration = configuration
        self.loop = loop
        self.sweeper = sweeper
    }

    // MARK: connecting

    /// Opens a connection that is not part of a pool (tools, tests, the migration runner's
    /// own session). Close it with `close()`.
    public static func connect(to configuration: PostgresConfiguration, on loop: EventLoop) async throws(PostgresError) -> PostgresConnection {
        let sweeper = PostgresSweeper(loop: loop, interval: configuration.sweepInterval)
        let connection = PostgresConnection(configuration: configuration, loop: loop, sweeper: sweeper)
        connection.ownedSweeper = sweeper
        let result: Result<Void, PostgresError> = await withCheckedContinuation { continuation in
            connection.start { continuation.resume(returning: $0) }
        }
        try result.get()
        return connection
    }

    /// Starts connecting; `done` runs on the loop once the session is ready or has failed.
    func start(_ done: @escaping (Result<Void, PostgresError>) -> Void) {
        let (keywords, values) = configuration.libpqParameters
        loop.execute {
            self.onConnect = done
            self.connectDeadline = self.loop.now &+ self.configuration.connectTimeout.nanoseconds
            self.sweeper.add(self)
            self.ownedSweeper?.start()
            // PQconnectStartParams may resolve a host name: never on the loop thread.
            DispatchQueue.global().async {
                let started = LibPQConnection.start(keywords: keywords, values: values)
                self.loop.execute { self.didStart(started) }
            }
        }
    }

    private func didStart(_ started: Result<LibPQConnection, PostgresError>) {
        switch started {
        case .failure(let error):
            close(error, unexpected: true)
        case .success(let pq):
            guard state == .connecting else { pq.finish(); return } // timed out meanwhile
            self.pq = pq
            // libpq's contract: after PQconnectStart, behave as if PQconnectPoll said WRITING.
            watch(read: false, write: true, renew: true)
        }
    }

    private func connectStep() {
        guard state == .connecting, let pq else { return }
        let step = pq.connectPoll()
        switch step {
        case .reading, .writing:
            guard pq.socket >= 0 else { close(.connection(pq.errorMessage), unexpected: true); return }
            // A new watcher every step: the socket may have been replaced, even by one that got
            // the same descriptor number (whose epoll registration the kernel dropped).
            watch(read: step == .reading, write: step == .writing, renew: true)
        case .failed:
            close(.connection(pq.errorMessage), unexpected: true)
        case .ok:
            guard pq.setNonBlocking() else { close(.connection(pq.errorMessage), unexpected: true); return }
            state = .settingUp
            watch(read: true, write: false, renew: true)
            let setup = configuration.sessionSetup
            let params: EncodedParameters
            do { params = try EncodedParameters(setup.params) } catch { close(error, unexpected: false); return }
            let request = PostgresRequest(sql: setup.sql, kind: .parameters(params), timeout: configuration.connectTimeout.nanoseconds) { [unowned self] result in
                switch result {
                case .success:
                    self.state = .ready
                    self.lastUsed = self.loop.now
                    let done = self.onConnect
                    self.onConnect = nil
                    done?(.success(()))
                case .failure(let error):
                    self.close(error, unexpected: true)
                }
            }
            send(request)
        }
    }

    // MARK: statements

    /// Runs one parameterized statement. Safe from any thread; the result arrives whenever
    /// the server answers (or the deadline passes).
    public func query(_ sql: String, _ params: [PostgresValue?] = [], timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        let result: Result<PostgresRows, PostgresError> = await withCheckedContinuation { continuation in
            query(sql, params, timeout: timeout) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Callback variant: `completion` runs on this connection's loop.
    public func query(_ sql: String, _ params: [PostgresValue?] = [], timeout: Duration? = nil, completion: @escaping (Result<PostgresRows, PostgresError>) -> Void) {
        let encoded: EncodedParameters
        do { encoded = try EncodedParameters(params) } catch {
            if loop.inLoop { completion(.failure(error)) } else { loop.execute { completion(.failure(error)) } }
            return
        }
        enqueue(PostgresRequest(sql: sql, kind: .parameters(encoded), timeout: (timeout ?? configuration.effectiveQueryTimeout).nanoseconds, completion: completion))
    }

    /// Runs trusted SQL that may hold several statements (the simple protocol), without
    /// parameters: for migration files only, never for anything built from input.
    public func executeScript(_ sql: String, timeout: Duration? = nil) async throws(PostgresError) {
        let result: Result<PostgresRows, PostgresError> = await withCheckedContinuation { continuation in
            enqueue(PostgresRequest(sql: sql, kind: .script, timeout: (timeout ?? configuration.effectiveQueryTimeout).nanoseconds) { continuation.resume(returning: $0) })
        }
        _ = try result.get()
    }

    /// Closes the session (any thread). Statements still queued fail with `.connection`.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.execute {
                self.close(.connection("connection closed"), unexpected: false)
                continuation.resume()
            }
        }
    }

    /// True once the connection is closed (loop thread, or a hint elsewhere).
    public var isClosed: Bool { state == .closed }

    func enqueue(_ request: PostgresRequest) {
        if loop.inLoop { enqueueOnLoop(request) } else { loop.execute { self.enqueueOnLoop(request) } }
    }

    private func enqueueOnLoop(_ request: PostgresRequest) {
        guard state != .closed else {
            request.completion(.failure(closedWith ?? .connection("connection closed")))
            return
        }
        request.deadline = loop.now &+ request.timeout
        queue.append(request)
        startNext()
    }

    /// True when the pool may hand this connection to someone else.
    var isReusable: Bool {
        state == .ready && current == nil && queue.isEmpty && !(pq?.inTransaction ?? false)
    }

    /// True when it is free but a transaction was left open (the pool rolls it back).
    var needsRollback: Bool {
        state == .ready && current == nil && queue.isEmpty && (pq?.inTransaction ?? false)
    }

    private func startNext() {
        guard state == .ready, current == nil else { return }
        while !queue.isEmpty {
            let next = queue.removeFirst()
            if next.abandoned { continue }
            send(next)
            return
        }
    }

    private func send(_ request: PostgresRequest) {
        guard let pq else { request.completion(.failure(.connection("connection closed"))); return }
        let sent: Bool
        switch request.kind {
        case .parameters(let params): sent = pq.sendQuery(request.sql, params)
        case .script: sent = pq.sendScript(request.sql)
        }
        current = request
        if request.deadline == 0 { request.deadline = loop.now &+ request.timeout }
        guard sent else { close(.connection(pq.errorMessage), unexpected: true); return }
        flush()
    }

    private func flush() {
        guard let pq else { return }
        switch pq.flush() {
        case 0:
            flushing = false
            watch(read: true, write: false)
        case 1:
            flushing = true
            watch(read: true, write: true)
        default:
            close(.connection(pq.errorMessage), unexpected: true)
        }
    }

    // MARK: readiness

    private func watch(read: Bool, write: Bool, renew: Bool = false) {
        let fd = pq?.socket ?? -1
        if renew || watcher == nil || watcher!.fd != fd {
            watcher?.stop()
            watcher = nil
            guard fd >= 0 else { return }
            watcher = DescriptorWatcher(fd: fd, loop: loop, onReadable: { [unowned self] in self.readable() }, onWritable: { [unowned self] in self.writable() })
            // The watcher holds the connection (through `retainWhileOpen`) while registered.
            retainWhileOpen = self
        }
        watcher?.setInterest(read: read, write: write)
    }

    /// A deliberate cycle, broken by `close`: an open connection must not vanish while the
    /// loop may still call it (a query in flight would never answer).
    private var retainWhileOpen: PostgresConnection?

    private func readable() {
        switch state {
        case .closed: return
        case .connecting: connectStep()
        case .settingUp, .ready:
            guard let pq, pq.consumeInput() else {
                close(.connection(pq?.errorMessage ?? "connection closed"), unexpected: true)
                return
            }
            if flushing { flush() }
            drainResults()
            if state != .closed, current == nil, pq.isBad {
                close(.connection(pq.errorMessage), unexpected: true)
            }
        }
    }

    private func writable() {
        switch state {
        case .closed: return
        case .connecting: connectStep()
        case .settingUp, .ready: flush()
        }
    }

    private func drainResults() {
        while let request = current, let pq, !pq.isBusy {
            if let result = pq.nextResult() {
                switch result {
                case .rows(let rows): request.rows = rows
                case .error(let error): if request.error == nil { request.error = error }
                }
                continue
            }
            // NULL: the statement is complete and the session is ready for the next.
            current = nil
            lastUsed = loop.now
            finish(request)
            if state == .closed { return }
            if pq.isBad { close(.connection(pq.errorMessage), unexpected: true); return }
            startNext()
        }
    }

    private func finish(_ request: PostgresRequest) {
        if request.abandoned {
            // A statement the caller gave up on has drained: reusable again.
            if releasePending, isReusable || needsRollback {
                releasePending = false
                delegate?.connectionDidBecomeReusable(self)
            }
            return
        }
        if let error = request.error {
            request.completion(.failure(error))
        } else {
            request.completion(.success(request.rows ?? .empty()))
        }
    }

    // MARK: deadlines

    /// Called by the loop's sweep.
    func tick(now: UInt64) {
        switch state {
        case .closed:
            return
        case .connecting, .settingUp:
            if now >= connectDeadline {
                close(.connection("connecting to \(redactedURL(configuration.url)) took longer than \(configuration.connectTimeout)"), unexpected: true)
            }
        case .ready:
            if let request = current {
                if !request.abandoned, now >= request.deadline {
                    abandon(request, now: now)
                } else if request.abandoned, now >= drainDeadline {
                    close(.timeout("statement did not stop within \(configuration.cancelGrace) of its cancel request"), unexpected: false)
                    return
                }
            }
            for queued in queue where !queued.abandoned && now >= queued.deadline {
                queued.abandoned = true
                queued.completion(.failure(.timeout("statement waited longer than its deadline for the connection")))
            }
        }
    }

    /// Answers the caller with `.timeout` now, asks the server to cancel (off the loop: a
    /// cancel request is a blocking connect), and gives the statement `cancelGrace` to end.
    private func abandon(_ request: PostgresRequest, now: UInt64) {
        request.abandoned = true
        drainDeadline = now &+ configuration.cancelGrace.nanoseconds
        if let token = pq?.cancelToken() {
            DispatchQueue.global().async { _ = token.cancel() }
        }
        request.completion(.failure(.timeout("no answer within the client deadline")))
    }

    // MARK: closing

    /// Closes now (loop thread): stops watching, frees libpq, fails whatever was pending.
    func close(_ error: PostgresError, unexpected: Bool) {
        guard state != .closed else { return }
        state = .closed
        closedWith = error
        watcher?.stop()
        watcher = nil
        pq?.finish()
        pq = nil
        sweeper.remove(self)
        ownedSweeper?.stop()
        let pending = (current.map { [$0] } ?? []) + queue
        current = nil
        queue.removeAll()
        for request in pending where !request.abandoned {
            request.completion(.failure(error))
        }
        if let done = onConnect {
            onConnect = nil
            done(.failure(error))
        }
        delegate?.connectionDidClose(self, error: error, unexpected: unexpected)
        retainWhileOpen = nil
    }
}
