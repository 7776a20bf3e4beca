import Foundation

/// A query parameter. Parameters always travel separately from the SQL text
/// (`PQsendQueryParams`), so no value is ever spliced into a statement: `'; DROP TABLE x; --`
/// is just a string.
///
/// Values are sent in PostgreSQL's text format. That format is a C string, so it cannot carry a
/// NUL byte: binary data goes as `.bytea`, which is hex-encoded (`\x0001ff...`) and arrives
/// byte for byte. A NUL inside `.text` is rejected with `PostgresError.invalidParameter`
/// (PostgreSQL's text types cannot store it either). `nil` in the parameter array is SQL NULL.
public enum PostgresValue: Sendable, Equatable {
    /// Sent with an unspecified type, so the server infers it from context (text, varchar,
    /// an enum, a date written as text ...).
    case text(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    /// Binary-safe: any bytes, NUL included.
    case bytea([UInt8])
    case uuid(UUID)
    /// A point in time, sent as an ISO 8601 `timestamptz` in UTC with microseconds.
    case timestamptz(Date)
    /// JSON text, for `json`/`jsonb` columns (type inferred by the server, so either works).
    case json(String)

    /// The type OID sent with the parameter; 0 lets the server infer it. Text and JSON are left
    /// to inference so they fit text-like columns and enums; the others are fixed so
    /// `SELECT $1` returns the right type.
    var typeOID: UInt32 {
        switch self {
        case .text, .json: return 0
        case .int: return 20 // int8
        case .double: return 701 // float8
        case .bool: return 16
        case .bytea: return 17
        case .uuid: return 2950
        case .timestamptz: return 1184
        }
    }

    /// Appends the text-format encoding and a terminating NUL to `out`.
    func encode(into out: inout [UInt8], index: Int) throws(PostgresError) {
        switch self {
        case .text(let s), .json(let s):
            let start = out.count
            out.append(contentsOf: s.utf8)
            if out[start...].contains(0) {
                throw .invalidParameter("parameter $\(index + 1) contains a NUL byte; PostgreSQL text cannot hold it (send binary data as .bytea)")
            }
        case .int(let v):
            out.append(contentsOf: String(v).utf8)
        case .double(let v):
            if v.isNaN { out.append(contentsOf: "NaN".utf8) }
            else if v.isInfinite { out.append(contentsOf: (v < 0 ? "-Infinity" : "Infinity").utf8) }
            else { out.append(contentsOf: String(v).utf8) }
        case .bool(let v):
            out.append(v ? UInt8(ascii: "t") : UInt8(ascii: "f"))
        case .bytea(let bytes):
            PostgresHex.encode(bytes, into: &out)
        case .uuid(let u):
            out.append(contentsOf: u.uuidString.utf8)
        case .timestamptz(let d):
            out.append(contentsOf: PostgresTimestamp.format(d).utf8)
        }
        out.append(0)
    }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

/// The parameters of one statement, encoded once into a single buffer of NUL-terminated
/// strings (one allocation, however many parameters) plus the offsets libpq needs.
struct EncodedParameters {
    var bytes: [UInt8] = []
    /// Start of each value in `bytes`, or -1 for NULL.
    var offsets: [Int] = []
    var types: [UInt32] = []

    init(_ params: [PostgresValue?]) throws(PostgresError) {
        offsets.reserveCapacity(params.count)
        types.reserveCapacity(params.count)
        for (i, p) in params.enumerated() {
            guard let p else {
                offsets.append(-1)
                types.append(0)
                continue
            }
            offsets.append(bytes.count)
            types.append(p.typeOID)
            try p.encode(into: &bytes, index: i)
        }
    }

    var count: Int { offsets.count }
}

/// Hex encoding and decoding of `bytea` (`\x` followed by two hex digits per byte), the
/// server's default output format and an input format it always accepts.
enum PostgresHex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.reserveCapacity(out.count + 2 + bytes.count * 2 + 1)
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "x"))
        digits.withUnsafeBufferPointer { d in
            for b in bytes {
                out.append(d[Int(b >> 4)])
                out.append(d[Int(b & 0x0f)])
            }
        }
    }

    /// Decodes `\x...`; nil if the text is not hex-format bytea.
    static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else { return nil }
        let n = (text.count - 2) / 2
        var out = [UInt8](repeating: 0, count: n)
        var ok = true
        out.withUnsafeMutableBufferPointer { o in
            var i = 2
            for k in 0..<n {
                guard let hi = nibble(text[i]), let lo = nibble(text[i + 1]) else { ok = false; return }
                o[k] = hi << 4 | lo
                i += 2
            }
        }
        return ok ? out : nil
    }

    @inline(__always)
    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
