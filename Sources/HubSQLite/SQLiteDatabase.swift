import Foundation

/// The embedded store's durable half: one SQLite database file (under the hub's `--data-dir`)
/// in WAL mode, with foreign keys on, a busy timeout and a prepared-statement cache.
///
/// Why one dedicated thread: every SQLite call is blocking file I/O (and `fsync` on commit),
/// which must never run on an event loop thread, where it would stall every connection of that
/// loop. Running all calls on one thread also serializes writers without locks (SQLite allows
/// one writer at a time anyway), lets the handle be opened with `SQLITE_OPEN_NOMUTEX`, and keeps
/// the statement cache single-threaded. Callers, from any thread or task, `await` a job that
/// hops to that thread and back.
///
/// ```swift
/// let db = try await SQLiteDatabase.open(path: "\(dataDir)/devicehub.sqlite")
/// try await db.execute("INSERT INTO t(a) VALUES (?1)", [.text(name)])
/// let rows = try await db.query("SELECT a FROM t WHERE id = ?1", [.integer(id)])
/// try await db.transaction { conn in try conn.execute(...); try conn.execute(...) }
/// await db.close()
/// ```
public final class SQLiteDatabase: @unchecked Sendable {
    public let path: String
    private let worker: SQLiteWorker
    /// Touched only on the worker thread.
    private var connection: SQLiteConnection?

    private init(path: String, worker: SQLiteWorker) {
        self.path = path
        self.worker = worker
    }

    deinit {
        // Dropped without `close()`. No job can be pending (each holds the database), so
        // closing from this thread cannot race the worker; then let the thread end.
        connection?.close()
        worker.stop()
    }

    /// Opens (creating if needed) the database at `path` on a new dedicated thread.
    public static func open(path: String, options: SQLiteConnection.Options = .init()) async throws(SQLiteError) -> SQLiteDatabase {
        let database = SQLiteDatabase(path: path, worker: SQLiteWorker(name: "sqlite \((path as NSString).lastPathComponent)"))
        let opened: Result<Void, SQLiteError> = await database.worker.run {
            do throws(SQLiteError) {
                database.connection = try SQLiteConnection(path: path, options: options)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        if case .failure(let error) = opened {
            database.worker.stop()
            throw error
        }
        return database
    }

    /// Runs `body` on the database thread with the connection (several statements without a
    /// transaction, or reads).
    public func withConnection<T>(_ body: @escaping (SQLiteConnection) throws -> T) async throws -> T {
        let result: Result<T, Error> = await worker.run {
            guard let connection = self.connection else { return .failure(SQLiteError.closed) }
            return Result { try body(connection) }
        }
        return try result.get()
    }

    /// Runs `body` in one transaction on the database thread (`BEGIN IMMEDIATE` … `COMMIT`,
    /// `ROLLBACK` on throw).
    public func transaction<T>(_ body: @escaping (SQLiteConnection) throws -> T) async throws -> T {
        try await withConnection { try $0.transaction(body) }
    }

    /// Runs one statement and returns its rows.
    public func query(_ sql: String, _ params: [SQLiteValue?] = []) async throws(SQLiteError) -> [SQLiteRow] {
        try await typed { (c) throws(SQLiteError) in try c.query(sql, params) }
    }

    /// Runs one statement and returns how many rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ params: [SQLiteValue?] = []) async throws(SQLiteError) -> Int {
        try await typed { (c) throws(SQLiteError) in try c.execute(sql, params) }
    }

    /// Runs trusted multi-statement SQL (migrations).
    public func executeScript(_ sql: String) async throws(SQLiteError) {
        try await typed { (c) throws(SQLiteError) in try c.executeScript(sql) }
    }

    /// Closes the database and ends its thread. Later calls fail with `SQLiteError.closed`.
    public func close() async {
        let _: Void = await worker.run {
            self.connection?.close()
            self.connection = nil
        }
        worker.stop()
    }

    private func typed<T>(_ body: @escaping (SQLiteConnection) throws(SQLiteError) -> T) async throws(SQLiteError) -> T {
        let result: Result<T, SQLiteError> = await worker.run {
            guard let connection = self.connection else { return .failure(.closed) }
            do throws(SQLiteError) { return .success(try body(connection)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// A thread that runs jobs one at a time, in order, until stopped.
final class SQLiteWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var thread: Thread?

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// Runs `job` on the worker thread and returns its value.
    func run<T>(_ job: @escaping () -> T) async -> T {
        await withCheckedContinuation { continuation in
            enqueue { continuation.resume(returning: job()) }
        }
    }

    private func enqueue(_ job: @escaping () -> Void) {
        condition.lock()
        if stopping {
            // The database is closed (its connection already gone): answer on the caller's
            // thread rather than queue to a thread that is ending and hang the caller.
            condition.unlock()
            job()
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread after the jobs already queued.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                thread = nil
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }
}
