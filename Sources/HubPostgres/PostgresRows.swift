/// One result column: its name and the server's type OID.
public struct PostgresColumn: Sendable, Equatable {
    public let name: String
    public let typeOID: UInt32
}

/// The result of one statement, copied out of libpq's `PGresult` at once (so no C memory
/// outlives the call) into one byte buffer plus offsets: a 1000-row result is three arrays, not
/// 1000 × columns small allocations.
public struct PostgresRows: Sendable, RandomAccessCollection {
    public let columns: [PostgresColumn]
    /// The command tag (`SELECT 1`, `INSERT 0 3`, `UPDATE 2`, `BEGIN`...).
    public let commandTag: String
    /// Rows touched by INSERT/UPDATE/DELETE/SELECT/MOVE/FETCH/COPY (from the command tag), or nil.
    public let affectedRows: Int?
    let rowCount: Int
    let bytes: [UInt8]
    /// Per cell (row-major): start in `bytes`.
    let starts: [Int]
    /// Per cell: length in bytes, or -1 for NULL.
    let lengths: [Int32]

    init(columns: [PostgresColumn], commandTag: String, affectedRows: Int?, rowCount: Int, bytes: [UInt8], starts: [Int], lengths: [Int32]) {
        self.columns = columns
        self.commandTag = commandTag
        self.affectedRows = affectedRows
        self.rowCount = rowCount
        self.bytes = bytes
        self.starts = starts
        self.lengths = lengths
    }

    /// An empty result (no columns, no rows), e.g. for an empty query string.
    static func empty(tag: String = "") -> PostgresRows {
        PostgresRows(columns: [], commandTag: tag, affectedRows: nil, rowCount: 0, bytes: [], starts: [], lengths: [])
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { rowCount }
    public subscript(position: Int) -> PostgresRow { PostgresRow(rows: self, index: position) }

    /// The index of the column called `name`, or nil.
    public func columnIndex(_ name: String) -> Int? {
        columns.firstIndex { $0.name == name }
    }
}

/// One row of a `PostgresRows`. Decode its cells by index or by column name:
/// `try row.decode(String.self, at: 0)`, `try row.decode(Int?.self, column: "attempts")`.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    public let index: Int

    public var columns: [PostgresColumn] { rows.columns }

    /// True when the cell is SQL NULL.
    public func isNull(at column: Int) -> Bool {
        rows.lengths[index * rows.columns.count + column] < 0
    }

    /// Decodes the cell at `column`. A NULL decodes only into an `Optional`.
    public func decode<T: PostgresDecodable>(_ type: T.Type, at column: Int) throws(PostgresError) -> T {
        guard column >= 0, column < rows.columns.count else {
            throw .decoding("column index \(column) out of range (result has \(rows.columns.count) columns)")
        }
        let cell = index * rows.columns.count + column
        let length = rows.lengths[cell]
        let col = rows.columns[column]
        if length < 0 {
            return try T.decodeNull(column: col.name)
        }
        let start = rows.starts[cell]
        // A copy-free view of the cell's bytes. (`withUnsafeBytes` only rethrows untyped
        // errors, so the outcome travels out as a Result.)
        let result: Result<T, PostgresError> = rows.bytes.withUnsafeBytes { all in
            let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + Int(length))])
            do throws(PostgresError) {
                return .success(try T.decode(text: slice, typeOID: col.typeOID, column: col.name))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Decodes the cell of the column called `name` (the first, if several share it).
    public func decode<T: PostgresDecodable>(_ type: T.Type, column name: String) throws(PostgresError) -> T {
        guard let i = rows.columnIndex(name) else {
            throw .decoding("no column named \"\(name)\" (columns: \(rows.columns.map(\.name).joined(separator: ", ")))")
        }
        return try decode(type, at: i)
    }
}
