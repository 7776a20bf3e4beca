import Foundation

/// A value bound to or read from SQLite: its five storage classes. Text is bound with its
/// byte length, so it may contain NUL bytes and arrives back unchanged; blobs are any bytes.
/// `nil` in a parameter array is SQL NULL.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

extension SQLiteValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    /// Booleans are stored as 0/1 (SQLite has no boolean type).
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }
}

extension SQLiteValue {
    /// UUIDs are stored as their canonical lowercase text (readable in the `sqlite3` shell,
    /// and comparable with the PostgreSQL store's ids).
    public static func uuid(_ u: UUID) -> SQLiteValue { .text(u.uuidString.lowercased()) }
    /// Booleans as 0/1.
    public static func bool(_ b: Bool) -> SQLiteValue { .integer(b ? 1 : 0) }
    /// Times as ISO 8601 UTC text with milliseconds (`2024-05-01T12:34:56.789Z`), which sorts
    /// correctly as text and matches the schema's `strftime` defaults.
    public static func date(_ d: Date) -> SQLiteValue { .text(SQLiteTimestamp.format(d)) }
}

/// One result row: column names and values, copied out of the statement.
public struct SQLiteRow: Sendable, Equatable {
    public let columns: [String]
    public let values: [SQLiteValue]

    public subscript(index: Int) -> SQLiteValue { values[index] }

    public subscript(column name: String) -> SQLiteValue? {
        columns.firstIndex(of: name).map { values[$0] }
    }

    /// Decodes the value at `index`; NULL decodes only into an `Optional`.
    public func decode<T: SQLiteDecodable>(_ type: T.Type, at index: Int) throws(SQLiteError) -> T {
        guard index >= 0, index < values.count else { throw .decoding("column index \(index) out of range (\(values.count) columns)") }
        return try T.decode(values[index], column: columns[index])
    }

    /// Decodes the value of the column called `name`.
    public func decode<T: SQLiteDecodable>(_ type: T.Type, column name: String) throws(SQLiteError) -> T {
        guard let i = columns.firstIndex(of: name) else { throw .decoding("no column named \"\(name)\" (columns: \(columns.joined(separator: ", ")))") }
        return try decode(type, at: i)
    }
}

/// A Swift type a SQLite value can be read as.
public protocol SQLiteDecodable {
    static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Self
}

extension SQLiteDecodable {
    static func mismatch(_ value: SQLiteValue, _ column: String) -> SQLiteError {
        .decoding("column \"\(column)\": cannot read \(Self.self) from \(value)".prefix(300).description)
    }
}

extension Optional: SQLiteDecodable where Wrapped: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Wrapped? {
        if case .null = value { return nil }
        return try Wrapped.decode(value, column: column)
    }
}

extension String: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> String {
        switch value {
        case .text(let s): return s
        case .integer(let i): return String(i)
        case .real(let d): return String(d)
        default: throw mismatch(value, column)
        }
    }
}

extension Int64: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Int64 {
        if case .integer(let i) = value { return i }
        throw mismatch(value, column)
    }
}

extension Int: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Int {
        Int(try Int64.decode(value, column: column))
    }
}

extension Double: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Double {
        switch value {
        case .real(let d): return d
        case .integer(let i): return Double(i)
        default: throw mismatch(value, column)
        }
    }
}

extension Bool: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Bool {
        if case .integer(let i) = value { return i != 0 }
        throw mismatch(value, column)
    }
}

extension UUID: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> UUID {
        if case .text(let s) = value, let u = UUID(uuidString: s) { return u }
        throw mismatch(value, column)
    }
}

extension Date: SQLiteDecodable {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> Date {
        if case .text(let s) = value, let d = SQLiteTimestamp.parse(s) { return d }
        throw mismatch(value, column)
    }
}

extension Array: SQLiteDecodable where Element == UInt8 {
    public static func decode(_ value: SQLiteValue, column: String) throws(SQLiteError) -> [UInt8] {
        switch value {
        case .blob(let b): return b
        case .text(let s): return Array(s.utf8)
        default: throw mismatch(value, column)
        }
    }
}

/// ISO 8601 UTC text with milliseconds, as written by `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`.
enum SQLiteTimestamp {
    static func format(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var secs = ms / 1000, milli = ms % 1000
        if milli < 0 { milli += 1000; secs -= 1 }
        var days = secs / 86_400, sod = secs % 86_400
        if sod < 0 { sod += 86_400; days -= 1 }
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func p(_ v: Int64, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(p(y, 4))-\(p(m, 2))-\(p(d, 2))T\(p(sod / 3600, 2)):\(p(sod / 60 % 60, 2)):\(p(sod % 60, 2)).\(p(milli, 3))Z"
    }

    static func parse(_ s: String) -> Date? {
        // YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]
        let u = Array(s.utf8)
        func num(_ at: Int, _ n: Int) -> Int64? {
            guard at + n <= u.count else { return nil }
            var v: Int64 = 0
            for k in at..<(at + n) { guard u[k] >= 48, u[k] <= 57 else { return nil }; v = v * 10 + Int64(u[k] - 48) }
            return v
        }
        guard u.count >= 19, let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let se = num(17, 2) else { return nil }
        var frac = 0.0
        var i = 19
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < u.count, u[i] >= 48, u[i] <= 57 { frac += Double(u[i] - 48) * scale; scale /= 10; i += 1 }
        }
        if i < u.count, u[i] == UInt8(ascii: "Z") { i += 1 }
        guard i == u.count else { return nil }
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Date(timeIntervalSince1970: Double(days * 86_400 + h * 3600 + mi * 60 + se) + frac)
    }
}
