import Foundation
import HubSQLite

/// The embedded `RecordStore`: the tables of `protocol/sql/sqlite/0001_initial.sql` in one
/// SQLite file. uuids are lowercase TEXT, timestamps ISO 8601 UTC text with milliseconds, JSON
/// and arrays TEXT. The queries are `SQLRecordStore`'s, shared with the networked store.
public final class SQLiteRecordStore: SQLRecordStore {
    public init(database: SQLiteDatabase) {
        super.init(database: SQLiteRecordDatabase(database: database))
    }
}

/// Runs record statements on the database's thread: a batch is one job there, so no other
/// caller's statement runs between its steps in this process; an atomic batch is also one
/// `BEGIN IMMEDIATE` transaction, atomic against other processes too.
struct SQLiteRecordDatabase: RecordDatabase {
    let database: SQLiteDatabase

    var dialect: RecordDialect { .sqlite }

    func run(_ batch: RecordBatch) async throws(StoreError) -> [RecordOutcome?] {
        let statements = try batch.steps.map { s throws(StoreError) in try Self.statement(s.query) }
        let body: (SQLiteConnection) throws -> [RecordOutcome?] = { connection in
            var outcomes: [RecordOutcome?] = []
            for (step, statement) in zip(batch.steps, statements) {
                guard step.when.holds(first: outcomes.first ?? nil) else { outcomes.append(nil); continue }
                if statement.returnsRows {
                    let rows = try connection.query(statement.sql, statement.params)
                    outcomes.append(RecordOutcome(rows: rows.map { SQLiteRecordCells(row: $0) }, affectedRows: 0))
                } else {
                    outcomes.append(RecordOutcome(rows: [], affectedRows: try connection.execute(statement.sql, statement.params)))
                }
            }
            return outcomes
        }
        do {
            return try await batch.atomic ? database.transaction(body) : database.withConnection(body)
        } catch {
            throw StoreError.fromSQLite(error)
        }
    }

    /// The statement in SQLite's dialect, its values as the driver's parameters.
    private static func statement(_ query: RecordQuery) throws(StoreError) -> (sql: String, params: [SQLiteValue?], returnsRows: Bool) {
        let (sql, values) = try query.render(.sqlite)
        var params: [SQLiteValue?] = []
        params.reserveCapacity(values.count)
        for value in values {
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
        }
        return (sql, params, query.returnsRows)
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
