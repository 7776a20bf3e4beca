/// The synchronous face of an open SQLite database, handed to closures that run on the
/// database's own thread (`SQLiteDatabase.read`/`write`/`transaction`). Never keep it beyond
/// the closure, never use it from another thread.
///
/// It keeps prepared statements in a small LRU cache keyed by SQL text, so the statements the
/// store runs over and over are compiled once.
public final class SQLiteConnection {
    /// Options fixed at open.
    public struct Options: Sendable {
        /// How long a statement waits for another process's lock before `SQLITE_BUSY`.
        /// Default 5 s.
        public var busyTimeoutMilliseconds: Int32 = 5000
        /// Prepared statements kept compiled. Default 64: more than the store's distinct
        /// statements, so the steady state compiles nothing.
        public var statementCacheSize: Int = 64
        /// `synchronous=NORMAL` in WAL mode loses at most the last transactions on power loss,
        /// never consistency; `FULL` syncs every commit. Default NORMAL.
        public var synchronousFull: Bool = false

        public init() {}
    }

    let handle: SQLiteHandle
    private let options: Options
    private var cache: [String: SQLiteStatement] = [:]
    /// Most recently used last; bounded by `options.statementCacheSize`.
    private var cacheOrder: [String] = []
    /// Statements compiled (cache misses): tests and metrics read it.
    public private(set) var statementsPrepared = 0

    init(path: String, options: Options) throws(SQLiteError) {
        self.options = options
        handle = try SQLiteHandle(path: path)
        handle.setBusyTimeout(milliseconds: options.busyTimeoutMilliseconds)
        // WAL: readers never block the writer and a commit is one append. Foreign keys are off
        // by default in SQLite for compatibility; the schema relies on them.
        let mode = try query("PRAGMA journal_mode = WAL")
        let journal = (try? mode.first?.decode(String.self, at: 0)) ?? ""
        // An in-memory database answers "memory"; a file that cannot do WAL is an error.
        guard journal.lowercased() == "wal" || path == ":memory:" || path.hasPrefix("file::memory:") else {
            throw SQLiteError(code: 1, message: "journal_mode is \(journal), WAL was refused", context: path)
        }
        try handle.exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = \(options.synchronousFull ? "FULL" : "NORMAL");")
    }

    func close() {
        cache.removeAll()
        cacheOrder.removeAll()
        handle.close()
    }

    // MARK: statements

    /// Runs one statement with parameters `?1...?n` and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ params: [SQLiteValue?] = []) throws(SQLiteError) -> [SQLiteRow] {
        let stmt = try statement(sql)
        try stmt.bind(params)
        return try stmt.rows()
    }

    /// Runs one statement and returns the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ params: [SQLiteValue?] = []) throws(SQLiteError) -> Int {
        try query(sql, params)
        return handle.changes
    }

    /// Runs trusted SQL holding several statements, without parameters (migration files).
    public func executeScript(_ sql: String) throws(SQLiteError) {
        try handle.exec(sql)
    }

    /// The rowid of the last inserted row.
    public var lastInsertRowID: Int64 { handle.lastInsertRowID }

    /// True when no transaction is open.
    public var isAutocommit: Bool { handle.isAutocommit }

    /// Runs `body` in a transaction: `BEGIN IMMEDIATE` (takes the write lock up front, so two
    /// processes cannot both read then fail to upgrade), `COMMIT`, or `ROLLBACK` on throw.
    public func transaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try handle.exec("BEGIN IMMEDIATE")
        do {
            let value = try body(self)
            try handle.exec("COMMIT")
            return value
        } catch {
            if !handle.isAutocommit { try? handle.exec("ROLLBACK") }
            throw error
        }
    }

    private func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = cache[sql] {
            if cacheOrder.last != sql, let i = cacheOrder.lastIndex(of: sql) {
                cacheOrder.remove(at: i)
                cacheOrder.append(sql)
            }
            return cached
        }
        let stmt = try handle.prepare(sql, persistent: true)
        statementsPrepared += 1
        cache[sql] = stmt
        cacheOrder.append(sql)
        if cacheOrder.count > options.statementCacheSize {
            cache[cacheOrder.removeFirst()] = nil
        }
        return stmt
    }
}
