/// The two SQL dialects the record store speaks.
enum RecordDialect {
    /// PostgreSQL: `$n` placeholders, schema `devicehub`, jsonb / text[] / inet / bytea columns.
    case postgres
    /// SQLite: `?n` placeholders, JSON and arrays as TEXT, blobs, ISO 8601 text timestamps.
    case sqlite
}

/// One SQL statement of the record store, written once for both dialects: literal SQL with its
/// values, table names, select lists and dialect-only fragments interpolated, rendered for a
/// dialect only when it runs.
///
/// ```swift
/// let q: RecordQuery = "SELECT \(columns: .devices) FROM \(table: .devices) WHERE org_id = \(.uuid(orgID))"
/// ```
///
/// Values never enter the SQL text: each becomes a parameter, with the placeholder (and, in
/// PostgreSQL, the cast or conversion) its column needs. Literal text and `raw:` fragments are
/// our own constants (column names, keywords), never input.
struct RecordQuery: ExpressibleByStringInterpolation {
    enum Part {
        case sql(String)
        case value(RecordValue)
        /// `devicehub.name` in PostgreSQL, `name` in SQLite.
        case table(RecordTable)
        /// The table's columns as `RecordCells` reads them (see `RecordDialect` and `columns`).
        case columns(RecordTable)
        /// A fragment that differs between the dialects (collation, casts, store-assigned keys).
        case dialect(postgres: String, sqlite: String)
        /// A select list of our own expressions (aggregates such as `count(*)`), the same in
        /// both dialects; marks the statement as one that yields rows, like `columns`.
        case selectList(String)
        /// ` = ANY($n::type[])` in PostgreSQL, ` IN (SELECT value FROM json_each(?n))` in SQLite:
        /// a set of plain tokens (state names, uuids) in one parameter whatever its size.
        case oneOf([String], postgresType: String)
    }

    private(set) var parts: [Part]

    init(parts: [Part]) { self.parts = parts }

    init(stringLiteral value: String) { parts = [.sql(value)] }

    init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

    /// True when the statement yields rows: every record read and every `RETURNING` here names
    /// its select list through `\(columns:)`, every aggregate through `\(selecting:)`. (SQLite
    /// needs to know: rows or a change count.)
    var returnsRows: Bool {
        parts.contains { part in
            switch part {
            case .columns, .selectList: return true
            default: return false
            }
        }
    }

    mutating func append(_ other: RecordQuery) { parts += other.parts }

    /// `queries` joined by `separator` (plain SQL such as `", "` or `" AND "`).
    static func joined(_ queries: [RecordQuery], separator: String) -> RecordQuery {
        var out = RecordQuery(parts: [])
        for (i, q) in queries.enumerated() {
            if i > 0 { out.parts.append(.sql(separator)) }
            out.append(q)
        }
        return out
    }

    struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        init(literalCapacity: Int, interpolationCount: Int) {}

        mutating func appendLiteral(_ literal: String) { if !literal.isEmpty { parts.append(.sql(literal)) } }
        /// A value, bound as a parameter.
        mutating func appendInterpolation(_ value: RecordValue) { parts.append(.value(value)) }
        /// Another statement's parts, spliced in (a filter, a list of assignments).
        mutating func appendInterpolation(_ query: RecordQuery) { parts += query.parts }
        mutating func appendInterpolation(table: RecordTable) { parts.append(.table(table)) }
        mutating func appendInterpolation(columns table: RecordTable) { parts.append(.columns(table)) }
        /// A select list of ours that is not a table's columns (see `Part.selectList`).
        mutating func appendInterpolation(selecting list: String) { parts.append(.selectList(list)) }
        /// An identifier of ours (a column name), as SQL text.
        mutating func appendInterpolation(raw: String) { parts.append(.sql(raw)) }
        mutating func appendInterpolation(postgres: String, sqlite: String) { parts.append(.dialect(postgres: postgres, sqlite: sqlite)) }
        /// `column \(isIn: tokens)`: membership in a set of plain tokens (no quoting needed in a
        /// PostgreSQL array literal: lowercase identifiers, uuids).
        mutating func appendInterpolation(isIn tokens: [String], postgresType: String = "text") {
            parts.append(.oneOf(tokens, postgresType: postgresType))
        }
    }

    /// The SQL text and its parameters in `dialect`, in placeholder order.
    func render(_ dialect: RecordDialect) throws(StoreError) -> (sql: String, params: [RecordValue]) {
        var sql = ""
        var params: [RecordValue] = []
        func placeholder(_ value: RecordValue) -> String {
            params.append(value)
            return dialect == .postgres ? "$\(params.count)" : "?\(params.count)"
        }
        for part in parts {
            switch part {
            case .sql(let s):
                sql += s
            case .value(let v):
                let p = placeholder(v)
                guard dialect == .postgres else { sql += p; continue }
                switch v {
                case .json: sql += "\(p)::jsonb"
                case .textArray: sql += "ARRAY(SELECT jsonb_array_elements_text(\(p)::jsonb))"
                case .inet: sql += "\(p)::inet"
                default: sql += p
                }
            case .table(let t):
                sql += dialect == .postgres ? "devicehub.\(t.name)" : t.name
            case .columns(let t):
                sql += Self.columns(t, dialect)
            case .dialect(let postgres, let sqlite):
                sql += dialect == .postgres ? postgres : sqlite
            case .selectList(let list):
                sql += list
            case .oneOf(let tokens, let type):
                let sorted = tokens.sorted()
                switch dialect {
                case .postgres:
                    let p = placeholder(.text("{" + sorted.joined(separator: ",") + "}"))
                    sql += " = ANY(\(p)::\(type)[])"
                case .sqlite:
                    let p = placeholder(.text(try RecordValue.jsonArray(sorted)))
                    sql += " IN (SELECT value FROM json_each(\(p)))"
                }
            }
        }
        return (sql, params)
    }

    /// The select list of `table`: in PostgreSQL jsonb and text[] as JSON text and inet without
    /// its mask, so that one decoder reads both dialects' rows; in SQLite the columns as stored.
    private static func columns(_ table: RecordTable, _ dialect: RecordDialect) -> String {
        table.columns.map { c in
            guard dialect == .postgres else { return c.name }
            switch c.kind {
            case .plain: return c.name
            case .json: return "\(c.name)::text"
            case .textArray: return "to_jsonb(\(c.name))::text"
            case .inet: return "host(\(c.name))"
            }
        }.joined(separator: ", ")
    }
}

extension RecordQuery {
    /// `SELECT <columns> FROM <table> WHERE <filter>`.
    static func select(_ table: RecordTable, where filter: RecordQuery) -> RecordQuery {
        "SELECT \(columns: table) FROM \(table: table) WHERE \(filter)"
    }

    /// `INSERT INTO table (columns) VALUES (...)`, optionally `RETURNING` all the table's
    /// columns. `computed` columns take an SQL expression instead of a value (a store-assigned
    /// key in one dialect).
    static func insert(_ table: RecordTable, _ values: RecordColumns.Assignments, computed: [(column: String, expression: RecordQuery)] = [],
                       returning: Bool = false) -> RecordQuery {
        let names = (computed.map(\.column) + values.map(\.column)).joined(separator: ", ")
        let expressions = joined(computed.map(\.expression) + values.map { v -> RecordQuery in "\(v.value)" }, separator: ", ")
        var q: RecordQuery = "INSERT INTO \(table: table) (\(raw: names)) VALUES (\(expressions))"
        if returning { q.append(" RETURNING \(columns: table)") }
        return q
    }

    /// `INSERT ... SELECT values WHERE EXISTS (SELECT 1 FROM cte)`: an insert inside a `WITH`
    /// statement that happens only when the named CTE produced rows.
    static func insert(_ table: RecordTable, _ values: RecordColumns.Assignments, onlyIfRowsIn cte: String) -> RecordQuery {
        let names = values.map(\.column).joined(separator: ", ")
        let expressions = joined(values.map { v -> RecordQuery in "\(v.value)" }, separator: ", ")
        return "INSERT INTO \(table: table) (\(raw: names)) SELECT \(expressions) WHERE EXISTS (SELECT 1 FROM \(raw: cte))"
    }

    /// `column = value, ...` of an UPDATE.
    static func assignments(_ set: RecordColumns.Assignments) -> RecordQuery {
        joined(set.map { a -> RecordQuery in "\(raw: a.column) = \(a.value)" }, separator: ", ")
    }

    /// `condition` as SQL on the row's columns.
    static func condition(_ condition: RecordCondition) -> RecordQuery {
        switch condition {
        case .stateIn(let states): return "state\(isIn: states)"
        case .isNull(let column): return "\(raw: column) IS NULL"
        case .atMost(let column, let value): return "\(raw: column) <= \(.int(value))"
        case .equals(let column, let value): return "\(raw: column) = \(value)"
        case .all(let conditions):
            if conditions.isEmpty { return "TRUE" }
            return "(\(joined(conditions.map { Self.condition($0) }, separator: " AND ")))"
        }
    }

    /// Names compare byte-wise in both dialects (`COLLATE "C"` in PostgreSQL, SQLite's default
    /// BINARY), so both backends page in the same order whatever the database's collation.
    static let bytewise: RecordQuery = "\(postgres: " COLLATE \"C\"", sqlite: "")"
}
