import Foundation
import HubSQLite

/// The embedded `RecordStore`: the tables of `protocol/sql/sqlite/0001_initial.sql` in one
/// SQLite file. uuids are lowercase TEXT, timestamps ISO 8601 UTC text with milliseconds, JSON
/// and arrays TEXT.
///
/// Every write that reads before it writes (conditional updates, redeeming a code, the one live
/// code per device) runs in one `BEGIN IMMEDIATE` transaction on the database's single thread,
/// so it is atomic against every other caller in this process and against other processes.
/// Inputs are checked by `RecordValidation` before any statement runs.
public final class SQLiteRecordStore: RecordStore {
    let database: SQLiteDatabase

    public init(database: SQLiteDatabase) {
        self.database = database
    }

    // MARK: running statements

    /// Runs `body` on the database thread, outside a transaction (single statements, reads).
    func run<T>(_ body: @escaping (SQLiteConnection) throws -> T) async throws(StoreError) -> T {
        do { return try await database.withConnection(body) } catch { throw StoreError.fromSQLite(error) }
    }

    /// Runs `body` in one transaction.
    func transaction<T>(_ body: @escaping (SQLiteConnection) throws -> T) async throws(StoreError) -> T {
        do { return try await database.transaction(body) } catch { throw StoreError.fromSQLite(error) }
    }

    // MARK: orgs and members

    public func insertOrg(_ org: Org) async throws(StoreError) {
        let o = try RecordValidation.org(org)
        let statement = try SQLiteSQL.insert(.orgs, RecordColumns.org(o))
        _ = try await run { try $0.execute(statement.sql, statement.params) }
    }

    public func org(id: UUID) async throws(StoreError) -> Org? {
        try await one(.orgs, where: "id = ?1", [.uuid(id)], RecordDecoding.org)
    }

    public func org(slug: String) async throws(StoreError) -> Org? {
        guard RecordValidation.isSlug(slug) else { return nil }
        return try await one(.orgs, where: "slug = ?1", [.text(slug)], RecordDecoding.org)
    }

    public func setMember(_ membership: Membership) async throws(StoreError) {
        let m = membership
        _ = try await run {
            try $0.execute("""
                INSERT INTO org_members (org_id, user_id, role) VALUES (?1, ?2, ?3)
                ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role
                """, [.uuid(m.orgID), .uuid(m.userID), .text(m.role.rawValue)])
        }
    }

    @discardableResult
    public func removeMember(orgID: UUID, userID: UUID) async throws(StoreError) -> Bool {
        try await run { try $0.execute("DELETE FROM org_members WHERE org_id = ?1 AND user_id = ?2", [.uuid(orgID), .uuid(userID)]) } > 0
    }

    public func memberships(userID: UUID) async throws(StoreError) -> [Membership] {
        try await many(.members, where: "user_id = ?1 ORDER BY org_id", [.uuid(userID)], RecordDecoding.membership)
    }

    public func members(orgID: UUID) async throws(StoreError) -> [Membership] {
        try await many(.members, where: "org_id = ?1 ORDER BY user_id", [.uuid(orgID)], RecordDecoding.membership)
    }

    public func orgs(ids: [UUID]) async throws(StoreError) -> [Org] {
        let ids = try RecordValidation.ids(ids)
        if ids.isEmpty { return [] }
        // ids are stored as lowercase text, which is also the order PostgreSQL's uuid sorts in.
        let list = try RecordValue.jsonArray(ids.map { $0.uuidString.lowercased() })
        return try await many(.orgs, where: "id IN (SELECT value FROM json_each(?1)) ORDER BY id", [.text(list)], RecordDecoding.org)
    }

    // MARK: audit

    @discardableResult
    public func appendAudit(_ entry: AuditEntry) async throws(StoreError) -> AuditEntry {
        let a = try RecordValidation.audit(entry)
        let statement = try SQLiteSQL.insert(.audit, RecordColumns.audit(a), returning: true)
        return try await returningOne(statement, RecordDecoding.audit)
    }

    public func audit(orgID: UUID?, beforeID: Int64?, limit: Int) async throws(StoreError) -> [AuditEntry] {
        var conditions: [String] = []
        var params: [SQLiteValue?] = []
        if let orgID { params.append(.uuid(orgID)); conditions.append("org_id = ?\(params.count)") }
        if let beforeID { params.append(.integer(beforeID)); conditions.append("id < ?\(params.count)") }
        params.append(.integer(Int64(StoreLimits.clampBatch(limit))))
        let filter = conditions.isEmpty ? "1" : conditions.joined(separator: " AND ")
        return try await many(.audit, where: "\(filter) ORDER BY id DESC LIMIT ?\(params.count)", params, RecordDecoding.audit)
    }

    // MARK: helpers

    /// The first row of `SELECT <table columns> FROM table WHERE <filter>`, decoded.
    func one<R>(_ table: RecordTable, where filter: String, _ params: [SQLiteValue?],
                _ decode: @escaping (SQLiteRecordCells) throws(StoreError) -> R) async throws(StoreError) -> R? {
        let sql = "SELECT \(SQLiteSQL.columns(table)) FROM \(table.name) WHERE \(filter)"
        return try await run { conn in
            guard let row = try conn.query(sql, params).first else { return nil }
            return try decode(SQLiteRecordCells(row: row))
        }
    }

    func many<R>(_ table: RecordTable, where filter: String, _ params: [SQLiteValue?],
                 _ decode: @escaping (SQLiteRecordCells) throws(StoreError) -> R) async throws(StoreError) -> [R] {
        let sql = "SELECT \(SQLiteSQL.columns(table)) FROM \(table.name) WHERE \(filter)"
        return try await run { conn in try conn.query(sql, params).map { try decode(SQLiteRecordCells(row: $0)) } }
    }

    func returningOne<R>(_ statement: SQLiteSQL, _ decode: @escaping (SQLiteRecordCells) throws(StoreError) -> R) async throws(StoreError) -> R {
        try await run { conn in try Self.returningOne(conn, statement, decode) }
    }

    static func returningOne<R>(_ conn: SQLiteConnection, _ statement: SQLiteSQL, _ decode: (SQLiteRecordCells) throws(StoreError) -> R) throws -> R {
        guard let row = try conn.query(statement.sql, statement.params).first else { throw StoreError.backend("INSERT ... RETURNING returned no row") }
        return try decode(SQLiteRecordCells(row: row))
    }

    /// The conditional update every state change uses, inside the caller's transaction: reads
    /// the row, and writes `set` only when it satisfies `condition` (nil: any row).
    static func conditionalUpdate<R>(_ conn: SQLiteConnection, _ table: RecordTable, id: UUID, condition: RecordCondition?,
                                     set: RecordColumns.Assignments,
                                     _ decode: (SQLiteRecordCells) throws(StoreError) -> R) throws -> RecordUpdate<R> {
        let columns = SQLiteSQL.columns(table)
        guard let row = try conn.query("SELECT \(columns) FROM \(table.name) WHERE id = ?1", [.uuid(id)]).first else { return .notFound }
        let cells = SQLiteRecordCells(row: row)
        let current = try decode(cells)
        if let condition, !(try matches(condition, cells, table)) { return .conflict(current: current) }
        var statement = SQLiteSQL()
        let idPlaceholder = try statement.bind(.uuid(id))
        let sets = try set.map { a throws(StoreError) in "\(a.column) = \(try statement.bind(a.value))" }.joined(separator: ", ")
        statement.sql = "UPDATE \(table.name) SET \(sets) WHERE id = \(idPlaceholder) RETURNING \(columns)"
        return .updated(try returningOne(conn, statement, decode))
    }

    /// `condition` checked on the row as read (columns of `table`).
    private static func matches(_ condition: RecordCondition, _ cells: SQLiteRecordCells, _ table: RecordTable) throws(StoreError) -> Bool {
        func index(_ column: String) throws(StoreError) -> Int {
            guard let i = table.columns.firstIndex(where: { $0.name == column }) else { throw .backend("\(table.name) has no column \(column)") }
            return i
        }
        switch condition {
        case .stateIn(let states): return states.contains(try cells.string(try index("state")))
        case .isNull(let column): return cells.isNull(try index(column))
        }
    }
}

/// One SQLite statement with its parameters (`?1 ... ?n`), built from `RecordValue`s.
struct SQLiteSQL {
    var sql = ""
    var params: [SQLiteValue?] = []

    /// Appends `value`'s parameter and returns its placeholder.
    mutating func bind(_ value: RecordValue) throws(StoreError) -> String {
        switch value {
        case .text(let s), .json(let s), .inet(let s): params.append(.text(s))
        case .int(let i): params.append(.integer(i))
        case .bool(let b): params.append(.bool(b))
        case .bytes(let b): params.append(.blob(b))
        case .uuid(let u): params.append(.uuid(u))
        case .date(let d): params.append(.date(d))
        case .textArray(let a): params.append(.text(try RecordValue.jsonArray(a)))
        case .null: params.append(nil)
        }
        return "?\(params.count)"
    }

    static func columns(_ table: RecordTable) -> String { table.columns.map(\.name).joined(separator: ", ") }

    /// `INSERT INTO table (columns) VALUES (...)`, with `RETURNING` all the table's columns.
    static func insert(_ table: RecordTable, _ values: RecordColumns.Assignments, returning: Bool = false) throws(StoreError) -> SQLiteSQL {
        var s = SQLiteSQL()
        let placeholders = try values.map { v throws(StoreError) in try s.bind(v.value) }.joined(separator: ", ")
        s.sql = "INSERT INTO \(table.name) (\(values.map(\.column).joined(separator: ", "))) VALUES (\(placeholders))"
        if returning { s.sql += " RETURNING \(columns(table))" }
        return s
    }
}

/// A SQLite row read by the record decoders.
struct SQLiteRecordCells: RecordCells {
    let row: SQLiteRow

    private func value(_ i: Int) -> SQLiteValue { i < row.values.count ? row.values[i] : .null }

    private func mismatch(_ i: Int, _ type: String) -> StoreError {
        .backend("column \(i < row.columns.count ? row.columns[i] : "#\(i)"): cannot read \(type)")
    }

    func isNull(_ i: Int) -> Bool { if case .null = value(i) { return true } else { return false } }

    func string(_ i: Int) throws(StoreError) -> String {
        if case .text(let s) = value(i) { return s }
        throw mismatch(i, "text")
    }

    func int(_ i: Int) throws(StoreError) -> Int64 {
        if case .integer(let v) = value(i) { return v }
        throw mismatch(i, "integer")
    }

    func bool(_ i: Int) throws(StoreError) -> Bool { try int(i) != 0 }

    func bytes(_ i: Int) throws(StoreError) -> [UInt8] {
        if case .blob(let b) = value(i) { return b }
        throw mismatch(i, "blob")
    }

    func uuid(_ i: Int) throws(StoreError) -> UUID {
        guard let u = UUID(uuidString: try string(i)) else { throw mismatch(i, "uuid") }
        return u
    }

    func rawDate(_ i: Int) throws(StoreError) -> Date {
        do { return try row.decode(Date.self, at: i) } catch { throw mismatch(i, "timestamp") }
    }
}
