import Foundation
import HubPostgres

/// The networked `RecordStore`: the tables of `protocol/sql/0001_initial.sql` in the schema
/// `devicehub`, through a `PostgresPool`. Every value travels as a parameter, never in the SQL
/// text. The queries are `SQLRecordStore`'s, shared with the embedded store.
public final class PostgresRecordStore: SQLRecordStore {
    public init(pool: PostgresPool) {
        super.init(database: PostgresRecordDatabase(pool: pool))
    }
}

/// Runs record statements on a pool: a single statement or a non-atomic batch on whatever
/// connection is free, an atomic batch inside one transaction.
struct PostgresRecordDatabase: RecordDatabase {
    let pool: PostgresPool

    var dialect: RecordDialect { .postgres }

    func run(_ batch: RecordBatch) async throws(StoreError) -> [RecordOutcome?] {
        let statements = try batch.steps.map { s throws(StoreError) in try Self.statement(s.query) }
        guard batch.atomic else { return try await Self.run(batch, statements, on: pool) }
        do {
            return try await pool.transaction { connection in try await Self.run(batch, statements, on: connection) }
        } catch {
            throw StoreError.fromPostgres(error)
        }
    }

    private static func run(_ batch: RecordBatch, _ statements: [(sql: String, params: [PostgresValue?])],
                            on db: some PostgresQuerying) async throws(StoreError) -> [RecordOutcome?] {
        var outcomes: [RecordOutcome?] = []
        for (step, statement) in zip(batch.steps, statements) {
            guard step.when.holds(first: outcomes.first ?? nil) else { outcomes.append(nil); continue }
            let rows = try await db.storeQuery(statement.sql, statement.params)
            outcomes.append(RecordOutcome(rows: rows.map { PostgresRecordCells(row: $0) }, affectedRows: rows.affectedRows ?? 0))
        }
        return outcomes
    }

    /// The statement in PostgreSQL's dialect, its values as the driver's parameters.
    private static func statement(_ query: RecordQuery) throws(StoreError) -> (sql: String, params: [PostgresValue?]) {
        let (sql, values) = try query.render(.postgres)
        var params: [PostgresValue?] = []
        params.reserveCapacity(values.count)
        for value in values {
            switch value {
            case .text(let s), .inet(let s): params.append(.text(s))
            case .int(let i): params.append(.int(i))
            case .bool(let b): params.append(.bool(b))
            case .bytes(let b): params.append(.bytea(b))
            case .uuid(let u): params.append(.uuid(u))
            case .date(let d): params.append(.timestamptz(d))
            case .json(let s): params.append(.json(s))
            // Unpacked by the placeholder's `jsonb_array_elements_text` (see `RecordQuery`).
            case .textArray(let a): params.append(.json(try RecordValue.jsonArray(a)))
            case .null: params.append(nil)
            }
        }
        return (sql, params)
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
