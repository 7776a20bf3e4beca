#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte equality by memcmp (the generic `elementsEqual` compares byte by byte).
@inline(__always)
func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
}

/// A JSON string as it appears in the text: the bytes between the quotes, and whether they
/// contain escapes. Unescaped strings (every JOSE header and Supabase claim in practice) are
/// compared in place without copying; escaped ones are decoded first.
struct JSONStringToken {
    var start: Int
    var end: Int
    var hasEscapes: Bool
}

/// A strict, allocation-free reader for the two small JSON objects in a JWT (the JOSE header
/// and the claims set).
///
/// Why not Foundation's `JSONDecoder` (or jwt-kit's `DefaultJWTParser`, which uses it): on
/// the verification path it costs a dictionary of boxed values, `Data` copies and dynamic
/// `Codable` dispatch per token; this reader walks the bytes once and hands out ranges (figures
/// in docs/auth-jwt.md). It is strict where strictness protects verification: one top-level
/// object and nothing after it, RFC 8259 grammar for every value (also the ones we skip),
/// control characters rejected in strings, escapes validated (lone surrogates rejected), and
/// nesting limited to `maxDepth` so a hostile token cannot exhaust the stack. It does not
/// validate UTF-8 inside strings; values we return as `String` are decoded with replacement.
struct JSONScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    static let maxDepth = 32

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    @inline(__always)
    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Reads the `{` that opens the top-level object.
    mutating func beginObject() -> Bool {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else { return false }
        index += 1
        return true
    }

    /// True when only whitespace is left (call after the object's closing brace).
    mutating func atEndOfInput() -> Bool {
        skipWhitespace()
        return index == bytes.count
    }

    enum Member {
        case key(JSONStringToken)
        case end
        case invalid
    }

    /// The next member's key, with the `:` after it consumed; `.end` after the closing brace.
    /// `first` is true before the first member (no comma expected) and is cleared here.
    mutating func nextMember(first: inout Bool) -> Member {
        skipWhitespace()
        guard let c = current else { return .invalid }
        if c == UInt8(ascii: "}") {
            index += 1
            return .end
        }
        if !first {
            guard c == UInt8(ascii: ",") else { return .invalid }
            index += 1
            skipWhitespace()
        }
        first = false
        guard let key = readString() else { return .invalid }
        skipWhitespace()
        guard current == UInt8(ascii: ":") else { return .invalid }
        index += 1
        skipWhitespace()
        return .key(key)
    }

    /// Reads a string starting at its opening quote.
    mutating func readString() -> JSONStringToken? {
        guard current == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                defer { index += 1 }
                return JSONStringToken(start: start, end: index, hasEscapes: escaped)
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                index += 1
                guard index < bytes.count else { return nil }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    guard index + 4 < bytes.count else { return nil }
                    for k in 1...4 where Self.hexValue(bytes[index + k]) == nil { return nil }
                    index += 5
                default:
                    return nil
                }
                continue
            }
            if c < 0x20 { return nil }
            index += 1
        }
        return nil
    }

    /// Skips one value of any type, validating its grammar.
    mutating func skipValue(depth: Int = 0) -> Bool {
        guard depth < Self.maxDepth, let c = current else { return false }
        switch c {
        case UInt8(ascii: "\""):
            return readString() != nil
        case UInt8(ascii: "{"):
            index += 1
            var first = true
            while true {
                switch nextMember(first: &first) {
                case .end: return true
                case .invalid: return false
                case .key: guard skipValue(depth: depth + 1) else { return false }
                }
            }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if current == UInt8(ascii: "]") {
                index += 1
                return true
            }
            while true {
                skipWhitespace()
                guard skipValue(depth: depth + 1) else { return false }
                skipWhitespace()
                guard let next = current else { return false }
                index += 1
                if next == UInt8(ascii: "]") { return true }
                guard next == UInt8(ascii: ",") else { return false }
            }
        case UInt8(ascii: "t"): return readLiteral("true")
        case UInt8(ascii: "f"): return readLiteral("false")
        case UInt8(ascii: "n"): return readLiteral("null")
        default:
            return readNumber() != nil
        }
    }

    /// Skips one value and returns the range of its text (for raw pass-through, e.g. app_metadata).
    mutating func rawValue() -> Range<Int>? {
        let start = index
        guard skipValue() else { return nil }
        return start..<index
    }

    mutating func readLiteral(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard index + n <= bytes.count else { return false }
        for k in 0..<n where bytes[index + k] != word.utf8Start[k] { return false }
        index += n
        return true
    }

    /// Reads a JSON number; returns its range and whether it is a plain integer.
    mutating func readNumber() -> (range: Range<Int>, integer: Bool)? {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, Self.isDigit(first) else { return nil }
        index += 1
        if first != UInt8(ascii: "0") {
            while let d = current, Self.isDigit(d) { index += 1 }
        }
        var integer = true
        if current == UInt8(ascii: ".") {
            integer = false
            index += 1
            guard let d = current, Self.isDigit(d) else { return nil }
            while let d = current, Self.isDigit(d) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            integer = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let d = current, Self.isDigit(d) else { return nil }
            while let d = current, Self.isDigit(d) { index += 1 }
        }
        return (start..<index, integer)
    }

    /// A NumericDate (RFC 7519 §2): seconds since the epoch. Integers are read directly;
    /// fractional or exponent forms (legal, never produced by Supabase) go through `Double` and
    /// are truncated toward negative infinity. Nil when the value is not a number or is out of
    /// the Int64 range.
    mutating func readNumericDate() -> Int64? {
        guard let (range, integer) = readNumber() else { return nil }
        var i = range.lowerBound
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        if integer && range.upperBound - i <= 18 {
            var v: Int64 = 0
            while i < range.upperBound {
                v = v * 10 + Int64(bytes[i] &- UInt8(ascii: "0"))
                i += 1
            }
            return negative ? -v : v
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        guard let d = Double(text), d.isFinite, d > -9.2e18, d < 9.2e18 else { return nil }
        return Int64(d.rounded(.down))
    }

    // MARK: - Strings

    /// The unescaped bytes of a string token (UTF-8), or nil for a lone surrogate escape.
    func decoded(_ token: JSONStringToken) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.end - token.start)
        var i = token.start
        while i < token.end {
            let c = bytes[i]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                i += 1
                continue
            }
            let e = bytes[i + 1]  // readString guaranteed a complete escape
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(at: i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard i + 6 <= token.end, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { return nil }
                    let low = hex4(at: i + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    return nil
                }
                guard let s = Unicode.Scalar(scalar) else { return nil }
                out.append(contentsOf: UTF8.encode(s)!)
            default: out.append(e)  // \" \\ \/
            }
        }
        return out
    }

    /// True when the string's value equals `expected` (UTF-8 bytes), escapes taken into account.
    func string(_ token: JSONStringToken, equals expected: UnsafeRawBufferPointer) -> Bool {
        if token.hasEscapes {
            guard let d = decoded(token) else { return false }
            return d.withUnsafeBytes { bytesEqual($0, expected) }
        }
        guard token.end - token.start == expected.count else { return false }
        return expected.isEmpty || memcmp(bytes.baseAddress! + token.start, expected.baseAddress!, expected.count) == 0
    }

    func string(_ token: JSONStringToken, equals expected: StaticString) -> Bool {
        string(token, equals: UnsafeRawBufferPointer(start: expected.utf8Start, count: expected.utf8CodeUnitCount))
    }

    /// The string's value as a Swift `String` (invalid UTF-8 repaired), nil for a lone surrogate.
    func stringValue(_ token: JSONStringToken) -> String? {
        if token.hasEscapes {
            return decoded(token).map { String(decoding: $0, as: UTF8.self) }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[token.start..<token.end]), as: UTF8.self)
    }

    private func hex4(at i: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | UInt32(Self.hexValue(bytes[i + k])!) }
        return v
    }

    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
