/// A failed SQLite call: the result code (extended, e.g. 2067 for a UNIQUE violation), the
/// database's message, and what we were doing.
public struct SQLiteError: Error, Equatable, Sendable, CustomStringConvertible {
    /// SQLite's extended result code (`SQLITE_CONSTRAINT_UNIQUE` = 2067 ...). 0 for errors made
    /// by this wrapper (decoding, closed database).
    public let code: Int32
    public let message: String
    /// The SQL or operation that failed (truncated), for logs.
    public let context: String

    public init(code: Int32, message: String, context: String) {
        self.code = code
        self.message = message
        self.context = context.count > 200 ? String(context.prefix(200)) + "…" : context
    }

    /// The primary result code (`SQLITE_CONSTRAINT` = 19 for every constraint kind).
    public var primaryCode: Int32 { code & 0xff }

    /// True for constraint violations (unique, foreign key, check, not null).
    public var isConstraintViolation: Bool { primaryCode == 19 }

    /// True when the database stayed locked longer than `busy_timeout`.
    public var isBusy: Bool { primaryCode == 5 || primaryCode == 6 }

    public var description: String { "sqlite error \(code): \(message) (\(context))" }

    static func decoding(_ message: String) -> SQLiteError { SQLiteError(code: 0, message: message, context: "decoding") }
    static let closed = SQLiteError(code: 21, message: "the database is closed", context: "closed")
}
