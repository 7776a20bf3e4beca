import Foundation
import HubPostgres

/// The networked `RecordStore`: the tables of `protocol/sql/0001_initial.sql` in the schema
/// `devicehub`, through a `PostgresPool`. Every value travels as a parameter, never in the SQL
/// text.
///
/// A conditional update is one statement (`UPDATE ... WHERE id = $1 AND state = ANY($2)
/// RETURNING ...`; PostgreSQL re-checks the condition on the newest row version after waiting
/// for a concurrent writer, so of N racing updates exactly one matches), followed, only when no
/// row came back, by a SELECT that tells a conflict from a missing row. Writes of several rows
/// (a command and its event, a code replacing the live one) run in one transaction. Inputs are
/// checked by `RecordValidation` before any statement is sent.
public final class PostgresRecordStore: RecordStore {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    // MARK: running statements

    func query(_ statement: PostgresSQL) async throws(StoreError) -> PostgresRows {
        do { return try await pool.query(statement.sql, statement.params) } catch { throw StoreError(error) }
    }

    func query(_ sql: String, _ params: [PostgresValue?]) async throws(StoreError) -> PostgresRows {
        do { return try await pool.query(sql, params) } catch { throw StoreError(error) }
    }

    func transaction<T>(_ body: (PostgresConnection) async throws -> T) async throws(StoreError) -> T {
        do { return try await pool.transaction(body) } catch { throw StoreError.fromPostgres(error) }
    }

    // MARK: orgs and members

    public func insertOrg(_ org: Org) async throws(StoreError) {
        let o = try RecordValidation.org(org)
        _ = try await query(try PostgresSQL.insert(.orgs, RecordColumns.org(o)))
    }

    public func org(id: UUID) async throws(StoreError) -> Org? {
        try await one(.orgs, where: "id = $1", [.uuid(id)], RecordDecoding.org)
    }

    public func org(slug: String) async throws(StoreError) -> Org? {
        guard RecordValidation.isSlug(slug) else { return nil }
        return try await one(.orgs, where: "slug = $1", [.text(slug)], RecordDecoding.org)
    }

    public func setMember(_ membership: Membership) async throws(StoreError) {
        _ = try await query("""
            INSERT INTO devicehub.org_members (org_id, user_id, role) VALUES ($1, $2, $3)
            ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role
            """, [.uuid(membership.orgID), .uuid(membership.userID), .text(membership.role.rawValue)])
    }

    @discardableResult
    public func removeMember(orgID: UUID, userID: UUID) async throws(StoreError) -> Bool {
        let rows = try await query("DELETE FROM devicehub.org_members WHERE org_id = $1 AND user_id = $2", [.uuid(orgID), .uuid(userID)])
        return (rows.affectedRows ?? 0) > 0
    }

    public func memberships(userID: UUID) async throws(StoreError) -> [Membership] {
        try await many(.members, where: "user_id = $1 ORDER BY org_id", [.uuid(userID)], RecordDecoding.membership)
    }

    public func members(orgID: UUID) async throws(StoreError) -> [Membership] {
        try await many(.members, where: "org_id = $1 ORDER BY user_id", [.uuid(orgID)], RecordDecoding.membership)
    }

    public func orgs(ids: [UUID]) async throws(StoreError) -> [Org] {
        let ids = try RecordValidation.ids(ids)
        if ids.isEmpty { return [] }
        let list = "{" + ids.map { $0.uuidString.lowercased() }.joined(separator: ",") + "}"
        return try await many(.orgs, where: "id = ANY($1::uuid[]) ORDER BY id", [.text(list)], RecordDecoding.org)
    }

    // MARK: audit

    @discardableResult
    public func appendAudit(_ entry: AuditEntry) async throws(StoreError) -> AuditEntry {
        let a = try RecordValidation.audit(entry)
        return try await returningOne(try PostgresSQL.insert(.audit, RecordColumns.audit(a), returning: true), RecordDecoding.audit)
    }

    public func audit(orgID: UUID?, beforeID: Int64?, limit: Int) async throws(StoreError) -> [AuditEntry] {
        var conditions: [String] = []
        var params: [PostgresValue?] = []
        if let orgID { params.append(.uuid(orgID)); conditions.append("org_id = $\(params.count)") }
        if let beforeID { params.append(.int(beforeID)); conditions.append("id < $\(params.count)") }
        params.append(.int(Int64(StoreLimits.clampBatch(limit))))
        let filter = conditions.isEmpty ? "true" : conditions.joined(separator: " AND ")
        return try await many(.audit, where: "\(filter) ORDER BY id DESC LIMIT $\(params.count)", params, RecordDecoding.audit)
    }

    // MARK: helpers

    func one<R>(_ table: RecordTable, where filter: String, _ params: [PostgresValue?],
                _ decode: (PostgresRecordCells) throws(StoreError) -> R) async throws(StoreError) -> R? {
        let rows = try await query("SELECT \(PostgresSQL.columns(table)) FROM \(PostgresSQL.name(table)) WHERE \(filter)", params)
        guard let row = rows.first else { return nil }
        return try decode(PostgresRecordCells(row: row))
    }

    func many<R>(_ table: RecordTable, where filter: String, _ params: [PostgresValue?],
                 _ decode: (PostgresRecordCells) throws(StoreError) -> R) async throws(StoreError) -> [R] {
        let rows = try await query("SELECT \(PostgresSQL.columns(table)) FROM \(PostgresSQL.name(table)) WHERE \(filter)", params)
        var out: [R] = []
        out.reserveCapacity(rows.count)
        for row in rows { out.append(try decode(PostgresRecordCells(row: row))) }
        return out
    }

    func returningOne<R>(_ statement: PostgresSQL, _ decode: (PostgresRecordCells) throws(StoreError) -> R) async throws(StoreError) -> R {
        guard let row = try await query(statement).first else { throw .backend("INSERT ... RETURNING returned no row") }
        return try decode(PostgresRecordCells(row: row))
    }

    /// The conditional update of every state change, on `db` (the pool, or a transaction's
    /// connection): one `UPDATE ... WHERE id AND <condition> RETURNING`, and when it matched
    /// nothing a `SELECT` to tell a conflict (with the row as it is) from a missing row.
    static func conditionalUpdate<R>(_ db: some PostgresQuerying, _ table: RecordTable, id: UUID, condition: RecordCondition?,
                                     set: RecordColumns.Assignments,
                                     _ decode: (PostgresRecordCells) throws(StoreError) -> R) async throws(StoreError) -> RecordUpdate<R> {
        let columns = PostgresSQL.columns(table)
        var statement = PostgresSQL()
        let idPlaceholder = try statement.bind(.uuid(id))
        let sets = try set.map { a throws(StoreError) in "\(a.column) = \(try statement.bind(a.value))" }.joined(separator: ", ")
        var filter = "id = \(idPlaceholder)"
        switch condition {
        case .stateIn(let states)?:
            statement.params.append(.text(PostgresSQL.textArrayLiteral(states)))
            filter += " AND state = ANY($\(statement.params.count)::text[])"
        case .isNull(let column)?:
            filter += " AND \(column) IS NULL"
        case nil:
            break
        }
        statement.sql = "UPDATE \(PostgresSQL.name(table)) SET \(sets) WHERE \(filter) RETURNING \(columns)"
        if let row = try await db.storeQuery(statement.sql, statement.params).first {
            return .updated(try decode(PostgresRecordCells(row: row)))
        }
        guard let row = try await db.storeQuery("SELECT \(columns) FROM \(PostgresSQL.name(table)) WHERE id = $1", [.uuid(id)]).first else {
            return .notFound
        }
        return .conflict(current: try decode(PostgresRecordCells(row: row)))
    }
}

/// What runs a statement: the pool, or one connection inside a transaction.
protocol PostgresQuerying {
    func storeQuery(_ sql: String, _ params: [PostgresValue?]) async throws(StoreError) -> PostgresRows
}

extension PostgresPool: PostgresQuerying {
    func storeQuery(_ sql: String, _ params: [PostgresValue?]) async throws(StoreError) -> PostgresRows {
        do { return try await query(sql, params) } catch { throw StoreError(error) }
    }
}

extension PostgresConnection: PostgresQuerying {
    func storeQuery(_ sql: String, _ params: [PostgresValue?]) async throws(StoreError) -> PostgresRows {
        do { return try await query(sql, params) } catch { throw StoreError(error) }
    }
}

/// One PostgreSQL statement with its parameters (`$1 ... $n`), built from `RecordValue`s.
struct PostgresSQL {
    static let schema = "devicehub"

    var sql = ""
    var params: [PostgresValue?] = []

    /// Appends `value`'s parameter and returns the expression that reads it (with the cast or
    /// conversion its column needs).
    mutating func bind(_ value: RecordValue) throws(StoreError) -> String {
        let placeholder: (Int) -> String
        switch value {
        case .text(let s): params.append(.text(s)); placeholder = { "$\($0)" }
        case .int(let i): params.append(.int(i)); placeholder = { "$\($0)" }
        case .bool(let b): params.append(.bool(b)); placeholder = { "$\($0)" }
        case .bytes(let b): params.append(.bytea(b)); placeholder = { "$\($0)" }
        case .uuid(let u): params.append(.uuid(u)); placeholder = { "$\($0)" }
        case .date(let d): params.append(.timestamptz(d)); placeholder = { "$\($0)" }
        case .json(let s): params.append(.json(s)); placeholder = { "$\($0)::jsonb" }
        case .textArray(let a):
            params.append(.json(try RecordValue.jsonArray(a)))
            placeholder = { "ARRAY(SELECT jsonb_array_elements_text($\($0)::jsonb))" }
        case .inet(let s): params.append(.text(s)); placeholder = { "$\($0)::inet" }
        case .null: params.append(nil); placeholder = { "$\($0)" }
        }
        return placeholder(params.count)
    }

    static func name(_ table: RecordTable) -> String { "\(schema).\(table.name)" }

    /// The select list of `table`, each column as `RecordCells` reads it: jsonb and text[] as
    /// JSON text, inet without its mask.
    static func columns(_ table: RecordTable) -> String {
        table.columns.map { c in
            switch c.kind {
            case .plain: return c.name
            case .json: return "\(c.name)::text"
            case .textArray: return "to_jsonb(\(c.name))::text"
            case .inet: return "host(\(c.name))"
            }
        }.joined(separator: ", ")
    }

    static func insert(_ table: RecordTable, _ values: RecordColumns.Assignments, returning: Bool = false) throws(StoreError) -> PostgresSQL {
        var s = PostgresSQL()
        let placeholders = try values.map { v throws(StoreError) in try s.bind(v.value) }.joined(separator: ", ")
        s.sql = "INSERT INTO \(name(table)) (\(values.map(\.column).joined(separator: ", "))) VALUES (\(placeholders))"
        if returning { s.sql += " RETURNING \(columns(table))" }
        return s
    }

    /// A `text[]` literal of state names (lowercase identifiers: no quoting needed).
    static func textArrayLiteral(_ states: [String]) -> String { "{" + states.sorted().joined(separator: ",") + "}" }
}

/// A PostgreSQL row read by the record decoders.
struct PostgresRecordCells: RecordCells {
    let row: PostgresRow

    private func get<T: PostgresDecodable>(_ type: T.Type, _ i: Int) throws(StoreError) -> T {
        do { return try row.decode(type, at: i) } catch { throw .backend(error.description) }
    }

    func isNull(_ i: Int) -> Bool { row.isNull(at: i) }
    func string(_ i: Int) throws(StoreError) -> String { try get(String.self, i) }
    func int(_ i: Int) throws(StoreError) -> Int64 { try get(Int64.self, i) }
    func bool(_ i: Int) throws(StoreError) -> Bool { try get(Bool.self, i) }
    func bytes(_ i: Int) throws(StoreError) -> [UInt8] { try get([UInt8].self, i) }
    func uuid(_ i: Int) throws(StoreError) -> UUID { try get(UUID.self, i) }
    func rawDate(_ i: Int) throws(StoreError) -> Date { try get(Date.self, i) }
}
