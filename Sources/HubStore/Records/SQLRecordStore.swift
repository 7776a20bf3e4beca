import Foundation

/// The `RecordStore` of both SQL backends: each query written once (`RecordQuery`, rendered in
/// the database's dialect when it runs) and each row decoded once (`RecordDecoding`). Create
/// one as `PostgresRecordStore(pool:)` or `SQLiteRecordStore(database:)`.
///
/// A conditional update is one statement, `UPDATE ... WHERE id = ? AND <condition> RETURNING
/// ...`: the database checks and writes in one step (PostgreSQL re-checks the condition on the
/// newest row version after waiting for a concurrent writer; SQLite has one writer at a time),
/// so of N racing updates exactly one matches. Only when no row came back does a SELECT tell a
/// conflict from a missing row. Writes of several rows (a command and its event, a code
/// replacing the live one) run in one transaction. Inputs are checked by `RecordValidation`
/// before any statement is sent.
public class SQLRecordStore: RecordStore, @unchecked Sendable {
    // @unchecked: the only state is this immutable reference to a Sendable database, and the
    // two subclasses add none; the class is not final only so that each backend keeps its own
    // public type and initializer.
    let database: any RecordDatabase

    init(database: any RecordDatabase) {
        self.database = database
    }

    var dialect: RecordDialect { database.dialect }

    // MARK: running statements

    /// Runs one statement and returns its rows and change count.
    func run(_ query: RecordQuery) async throws(StoreError) -> RecordOutcome {
        guard let outcome = try await database.run(RecordBatch([.init(query: query)], atomic: false)).first ?? nil else {
            throw .backend("a statement ran without an outcome")
        }
        return outcome
    }

    func many<R>(_ query: RecordQuery, _ decode: (any RecordCells) throws(StoreError) -> R) async throws(StoreError) -> [R] {
        var out: [R] = []
        for row in try await run(query).rows { out.append(try decode(row)) }
        return out
    }

    func one<R>(_ query: RecordQuery, _ decode: (any RecordCells) throws(StoreError) -> R) async throws(StoreError) -> R? {
        guard let row = try await run(query).rows.first else { return nil }
        return try decode(row)
    }

    /// An `INSERT ... RETURNING` that must give back its row.
    func returningOne<R>(_ query: RecordQuery, _ decode: (any RecordCells) throws(StoreError) -> R) async throws(StoreError) -> R {
        guard let row = try await run(query).rows.first else { throw .backend("INSERT ... RETURNING returned no row") }
        return try decode(row)
    }

    /// The conditional update of every state change: `UPDATE ... RETURNING`, and when it matched
    /// nothing a `SELECT` to tell a conflict (with the row as it is) from a missing row. `then`,
    /// when given, runs only when the update matched, in the same transaction.
    func conditionalUpdate<R>(_ table: RecordTable, id: UUID, condition: RecordCondition?, set: RecordColumns.Assignments,
                              then follow: (table: RecordTable, values: RecordColumns.Assignments)? = nil,
                              _ decode: (any RecordCells) throws(StoreError) -> R) async throws(StoreError) -> RecordUpdate<R> {
        var filter: RecordQuery = "id = \(.uuid(id))"
        if let condition { filter.append(" AND \(RecordQuery.condition(condition))") }
        let update: RecordQuery = "UPDATE \(table: table) SET \(RecordQuery.assignments(set)) WHERE \(filter) RETURNING \(columns: table)"
        let reread: RecordQuery = .select(table, where: "id = \(.uuid(id))")
        if dialect == .postgres {
            // One statement, so one round trip and its own transaction: the update, and the
            // follow-up insert only when the update matched. (As a BEGIN ... COMMIT batch it
            // cost four round trips; this is on every queue transition.) A row that did not
            // match is read again by a second statement: the first one's snapshot may predate
            // the write that made the condition fail.
            var statement: RecordQuery = "WITH u AS (\(update))"
            if let follow { statement.append(", f AS (\(RecordQuery.insert(follow.table, follow.values, onlyIfRowsIn: "u")))") }
            statement.append(" SELECT * FROM u")
            if let row = try await run(statement).rows.first { return .updated(try decode(row)) }
            guard let row = try await run(reread).rows.first else { return .notFound }
            return .conflict(current: try decode(row))
        }
        var steps: [RecordBatch.Step] = [.init(query: update), .init(query: reread, when: .firstReturnedNoRows)]
        if let follow { steps.append(.init(query: .insert(follow.table, follow.values), when: .firstReturnedRows)) }
        let outcomes = try await database.run(RecordBatch(steps, atomic: follow != nil))
        if let row = outcomes[0]?.rows.first { return .updated(try decode(row)) }
        guard let row = outcomes[1]?.rows.first else { return .notFound }
        return .conflict(current: try decode(row))
    }

    // MARK: orgs and members

    public func insertOrg(_ org: Org) async throws(StoreError) {
        let o = try RecordValidation.org(org)
        _ = try await run(.insert(.orgs, RecordColumns.org(o)))
    }

    public func org(id: UUID) async throws(StoreError) -> Org? {
        try await one(.select(.orgs, where: "id = \(.uuid(id))"), RecordDecoding.org)
    }

    public func org(slug: String) async throws(StoreError) -> Org? {
        guard RecordValidation.isSlug(slug) else { return nil }
        return try await one(.select(.orgs, where: "slug = \(.text(slug))"), RecordDecoding.org)
    }

    public func orgs(ids: [UUID]) async throws(StoreError) -> [Org] {
        let ids = try RecordValidation.ids(ids)
        if ids.isEmpty { return [] }
        // SQLite keeps uuids as lowercase text, whose order is PostgreSQL's uuid order.
        let tokens = ids.map { $0.uuidString.lowercased() }
        return try await many(.select(.orgs, where: "id\(isIn: tokens, postgresType: "uuid") ORDER BY id"), RecordDecoding.org)
    }

    public func updateOrgPolicy(id: UUID, requireDistinctApprover: Bool?, autoApprovedKinds: [String]?, at: Date) async throws(StoreError) -> Org? {
        let at = try RecordValidation.date(at, "at")
        if let kinds = autoApprovedKinds { try RecordValidation.autoApprovedKinds(kinds) }
        guard requireDistinctApprover != nil || autoApprovedKinds != nil else { return try await org(id: id) }
        let set = RecordColumns.orgPolicy(requireDistinctApprover: requireDistinctApprover, autoApprovedKinds: autoApprovedKinds, updatedAt: at)
        return try await one("UPDATE \(table: .orgs) SET \(RecordQuery.assignments(set)) WHERE id = \(.uuid(id)) RETURNING \(columns: .orgs)",
                             RecordDecoding.org)
    }

    public func setMember(_ membership: Membership) async throws(StoreError) {
        let m = membership
        _ = try await run("""
            INSERT INTO \(table: .members) (org_id, user_id, role) VALUES (\(.uuid(m.orgID)), \(.uuid(m.userID)), \(.text(m.role.rawValue)))
            ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role
            """)
    }

    @discardableResult
    public func removeMember(orgID: UUID, userID: UUID) async throws(StoreError) -> Bool {
        try await run("DELETE FROM \(table: .members) WHERE org_id = \(.uuid(orgID)) AND user_id = \(.uuid(userID))").affectedRows > 0
    }

    public func memberships(userID: UUID) async throws(StoreError) -> [Membership] {
        try await many(.select(.members, where: "user_id = \(.uuid(userID)) ORDER BY org_id"), RecordDecoding.membership)
    }

    public func members(orgID: UUID) async throws(StoreError) -> [Membership] {
        try await many(.select(.members, where: "org_id = \(.uuid(orgID)) ORDER BY user_id"), RecordDecoding.membership)
    }

    // MARK: audit

    @discardableResult
    public func appendAudit(_ entry: AuditEntry) async throws(StoreError) -> AuditEntry {
        let a = try RecordValidation.audit(entry)
        return try await returningOne(.insert(.audit, RecordColumns.audit(a), returning: true), RecordDecoding.audit)
    }

    public func audit(orgID: UUID?, beforeID: Int64?, limit: Int) async throws(StoreError) -> [AuditEntry] {
        var conditions: [RecordQuery] = []
        if let orgID { conditions.append("org_id = \(.uuid(orgID))") }
        if let beforeID { conditions.append("id < \(.int(beforeID))") }
        let filter = conditions.isEmpty ? "TRUE" : RecordQuery.joined(conditions, separator: " AND ")
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.audit, where: "\(filter) ORDER BY id DESC LIMIT \(.int(n))"), RecordDecoding.audit)
    }
}
