import Foundation

/// A Swift type a result cell can be decoded into. Results arrive in PostgreSQL's text format,
/// so each conformance parses the server's text output for the types that map onto it.
///
/// Conformances: `String` (any column: its text, so `json`/`jsonb` come out as JSON text),
/// `Int`, `Int64`, `Int32`, `Double`, `Bool`, `UUID`, `Date` (`timestamptz`/`timestamp`),
/// `[UInt8]` (`bytea`), and `Optional` of any of these (NULL → nil).
public protocol PostgresDecodable {
    /// Decodes non-NULL cell text. `typeOID` is the column's type, for conformances that care.
    static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Self
    /// What a NULL becomes: an error, unless the type is an `Optional`.
    static func decodeNull(column: String) throws(PostgresError) -> Self
}

extension PostgresDecodable {
    public static func decodeNull(column: String) throws(PostgresError) -> Self {
        throw .decoding("column \"\(column)\" is NULL; decode \(Self.self)? instead")
    }

    static func mismatch(_ text: UnsafeRawBufferPointer, column: String) -> PostgresError {
        let shown = String(decoding: text.prefix(64), as: UTF8.self)
        return .decoding("column \"\(column)\": cannot read \(Self.self) from \"\(shown)\(text.count > 64 ? "…" : "")\"")
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Wrapped? {
        try Wrapped.decode(text: text, typeOID: typeOID, column: column)
    }

    public static func decodeNull(column: String) throws(PostgresError) -> Wrapped? { nil }
}

extension String: PostgresDecodable {
    /// Any column's text as the server wrote it (NUL-free by PostgreSQL's rules; invalid UTF-8
    /// cannot occur in a UTF8 database).
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> String {
        String(decoding: text, as: UTF8.self)
    }
}

extension Int64: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Int64 {
        // Parse the bytes directly: no String on the hot path of id columns.
        var i = 0
        var negative = false
        if text.count > 0, text[0] == UInt8(ascii: "-") || text[0] == UInt8(ascii: "+") { negative = text[0] == UInt8(ascii: "-"); i = 1 }
        guard i < text.count else { throw mismatch(text, column: column) }
        var value: Int64 = 0
        while i < text.count {
            let c = text[i]
            guard c >= 48, c <= 57 else { throw mismatch(text, column: column) }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(c - 48)) : m.addingReportingOverflow(Int64(c - 48))
            guard !o1, !o2 else { throw mismatch(text, column: column) }
            value = s
            i += 1
        }
        return value
    }
}

extension Int: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Int {
        Int(try Int64.decode(text: text, typeOID: typeOID, column: column))
    }
}

extension Int32: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Int32 {
        guard let v = Int32(exactly: try Int64.decode(text: text, typeOID: typeOID, column: column)) else { throw mismatch(text, column: column) }
        return v
    }
}

extension Double: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Double {
        // float4/float8/numeric text; strtod-style parsing also takes "NaN", "Infinity", "-Infinity".
        guard let v = Double(String(decoding: text, as: UTF8.self)) else { throw mismatch(text, column: column) }
        return v
    }
}

extension Bool: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Bool {
        if text.count == 1 {
            if text[0] == UInt8(ascii: "t") { return true }
            if text[0] == UInt8(ascii: "f") { return false }
        }
        throw mismatch(text, column: column)
    }
}

extension UUID: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> UUID {
        guard let u = UUID(uuidString: String(decoding: text, as: UTF8.self)) else { throw mismatch(text, column: column) }
        return u
    }
}

extension Date: PostgresDecodable {
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> Date {
        guard let d = PostgresTimestamp.parse(text) else { throw mismatch(text, column: column) }
        return d
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    /// `bytea` in hex output format (every connection sets `bytea_output = 'hex'`).
    public static func decode(text: UnsafeRawBufferPointer, typeOID: UInt32, column: String) throws(PostgresError) -> [UInt8] {
        guard let bytes = PostgresHex.decode(text) else { throw mismatch(text, column: column) }
        return bytes
    }
}
