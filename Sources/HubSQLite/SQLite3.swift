import CSQLite

/// `SQLITE_TRANSIENT`: tells SQLite to copy a bound value before the call returns (the macro is
/// `((sqlite3_destructor_type)-1)`, which Swift cannot import).
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The one place that calls SQLite for a database handle: owns the `sqlite3 *` and closes it in
/// `deinit` (or earlier, in `close()`). Not thread-safe by design: it is used from one thread
/// only (see `SQLiteDatabase`), so it is opened with `SQLITE_OPEN_NOMUTEX`.
final class SQLiteHandle {
    private(set) var db: OpaquePointer?

    init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: message, context: "open \(path)")
        }
        db = handle
        // Extended codes tell a UNIQUE violation (2067) from a FOREIGN KEY one (787).
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    /// Closes the handle. `sqlite3_close_v2` defers the close until every statement is
    /// finalized, so statements still cached elsewhere cannot dangle.
    func close() {
        if let db {
            sqlite3_close_v2(db)
            self.db = nil
        }
    }

    func error(_ rc: Int32, _ context: String) -> SQLiteError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "the database is closed"
        let code = db.map { sqlite3_extended_errcode($0) } ?? rc
        return SQLiteError(code: code == 0 ? rc : code, message: message, context: context)
    }

    func setBusyTimeout(milliseconds: Int32) {
        if let db { sqlite3_busy_timeout(db, milliseconds) }
    }

    /// Runs SQL text that may hold several statements, without parameters (pragmas, migration
    /// files).
    func exec(_ sql: String) throws(SQLiteError) {
        guard let db else { throw .closed }
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(message)
            throw SQLiteError(code: sqlite3_extended_errcode(db), message: text, context: sql)
        }
    }

    /// Compiles one statement. `persistent` hints that it will be cached and reused.
    func prepare(_ sql: String, persistent: Bool) throws(SQLiteError) -> SQLiteStatement {
        guard let db else { throw .closed }
        var stmt: OpaquePointer?
        let flags: UInt32 = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let rc = sqlite3_prepare_v3(db, sql, -1, flags, &stmt, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql) }
        guard let stmt else { throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement", context: sql) }
        return SQLiteStatement(stmt, handle: self, sql: sql)
    }

    var changes: Int { db.map { Int(sqlite3_changes64($0)) } ?? 0 }
    var lastInsertRowID: Int64 { db.map { sqlite3_last_insert_rowid($0) } ?? 0 }
    var isAutocommit: Bool { db.map { sqlite3_get_autocommit($0) != 0 } ?? true }
}

/// Owns one prepared `sqlite3_stmt *`, finalized in `deinit`.
final class SQLiteStatement {
    private let stmt: OpaquePointer
    private unowned let handle: SQLiteHandle
    let sql: String

    init(_ stmt: OpaquePointer, handle: SQLiteHandle, sql: String) {
        self.stmt = stmt
        self.handle = handle
        self.sql = sql
    }

    deinit { sqlite3_finalize(stmt) }

    var parameterCount: Int { Int(sqlite3_bind_parameter_count(stmt)) }

    /// Resets and binds `values` to `?1...?n` (copied by SQLite: `SQLITE_TRANSIENT`).
    func bind(_ values: [SQLiteValue?]) throws(SQLiteError) {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        guard values.count == parameterCount else {
            throw SQLiteError(code: SQLITE_RANGE, message: "statement takes \(parameterCount) parameters, \(values.count) given", context: sql)
        }
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value ?? .null {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .integer(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .real(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let s):
                // With an explicit byte length, so NUL bytes inside the string are kept.
                var s = s
                rc = s.withUTF8 { buf in
                    guard let base = buf.baseAddress, buf.count > 0 else { return sqlite3_bind_text(stmt, index, "", 0, transient) }
                    return sqlite3_bind_text64(stmt, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), UInt64(buf.count), transient, UInt8(SQLITE_UTF8))
                }
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes { buf in
                    // A zero-length blob must still be a blob, not NULL: bind zeroblob(0).
                    buf.count == 0 ? sqlite3_bind_zeroblob(stmt, index, 0) : sqlite3_bind_blob64(stmt, index, buf.baseAddress, UInt64(buf.count), transient)
                }
            }
            guard rc == SQLITE_OK else { throw handle.error(rc, sql) }
        }
    }

    /// Runs the statement to completion and returns its rows.
    func rows() throws(SQLiteError) -> [SQLiteRow] {
        var out: [SQLiteRow] = []
        var names: [String]?
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else {
                let e = handle.error(rc, sql)
                sqlite3_reset(stmt)
                throw e
            }
            let n = Int(sqlite3_column_count(stmt))
            if names == nil { names = (0..<n).map { String(cString: sqlite3_column_name(stmt, Int32($0))) } }
            var values: [SQLiteValue] = []
            values.reserveCapacity(n)
            for c in 0..<Int32(n) { values.append(column(c)) }
            out.append(SQLiteRow(columns: names!, values: values))
        }
        sqlite3_reset(stmt)
        return out
    }

    private func column(_ c: Int32) -> SQLiteValue {
        switch sqlite3_column_type(stmt, c) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(stmt, c))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(stmt, c))
        case SQLITE_TEXT:
            // Read by byte count, not as a C string, so embedded NULs survive.
            let p = sqlite3_column_text(stmt, c)
            let n = Int(sqlite3_column_bytes(stmt, c))
            guard let p, n > 0 else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        case SQLITE_BLOB:
            let p = sqlite3_column_blob(stmt, c)
            let n = Int(sqlite3_column_bytes(stmt, c))
            guard let p, n > 0 else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default:
            return .null
        }
    }
}
