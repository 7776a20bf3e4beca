// Request-line vocabulary: the method token and the protocol version.

/// An HTTP request method (RFC 9110 §9).
///
/// Methods are case-sensitive: `get` is not `GET`, so it becomes `.other("get")`. The common
/// methods get their own cases so that routing and `switch`es compare an enum tag instead of a
/// String. Always construct through `init(bytes:)` or `init(name:)`, which map a known name to
/// its case; `.other("GET")` built by hand would not compare equal to `.get`.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, patch, options
    case other(String)

    /// The method name as it appears on the wire.
    public var name: String {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .patch: return "PATCH"
        case .options: return "OPTIONS"
        case .other(let name): return name
        }
    }

    public var description: String { name }

    /// Maps method bytes (already validated as a token by the parser) to a case.
    ///
    /// The common methods are recognised by length and bytes without creating a String, so a
    /// GET costs no allocation; only extension methods (PURGE, MKCOL, …) build one.
    public init<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        if let known = bytes.withContiguousStorageIfAvailable({ HTTPMethod.known($0) }) {
            if let method = known { self = method; return }
            self = .other(String(decoding: bytes, as: UTF8.self))
            return
        }
        let copy = Array(bytes)
        self = copy.withUnsafeBufferPointer { HTTPMethod.known($0) } ?? .other(String(decoding: copy, as: UTF8.self))
    }

    /// Maps a method name to a case (`"GET"` → `.get`, `"PURGE"` → `.other("PURGE")`).
    public init(name: String) {
        self.init(bytes: Array(name.utf8))
    }

    /// Recognises the seven common methods by their exact bytes.
    @inline(__always)
    static func known(_ b: UnsafeBufferPointer<UInt8>) -> HTTPMethod? {
        switch b.count {
        case 3:
            if b[0] == 0x47 && b[1] == 0x45 && b[2] == 0x54 { return .get }          // GET
            if b[0] == 0x50 && b[1] == 0x55 && b[2] == 0x54 { return .put }          // PUT
        case 4:
            if b[0] == 0x50 && b[1] == 0x4F && b[2] == 0x53 && b[3] == 0x54 { return .post }  // POST
            if b[0] == 0x48 && b[1] == 0x45 && b[2] == 0x41 && b[3] == 0x44 { return .head }  // HEAD
        case 5:
            if matches(b, "PATCH") { return .patch }
        case 6:
            if matches(b, "DELETE") { return .delete }
        case 7:
            if matches(b, "OPTIONS") { return .options }
        default:
            break
        }
        return nil
    }

    @inline(__always)
    private static func matches(_ b: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        let p = literal.utf8Start
        for i in 0..<b.count where b[i] != p[i] { return false }
        return true
    }
}

/// The protocol version of a request line (`HTTP/1.0` or `HTTP/1.1`; the parser rejects others).
public struct HTTPVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt8
    public var minor: UInt8

    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }

    /// Classifies the version field of a request line.
    ///
    /// RFC 9112 §2.3: `HTTP-version = "HTTP" "/" DIGIT "." DIGIT`, case-sensitive. Anything that
    /// does not match the grammar is a malformed request (400); a well-formed version other than
    /// 1.0 / 1.1 (notably `HTTP/2.0` from the h2 connection preface) is understood but not served
    /// (505), which tells an h2 client to fall back instead of retrying.
    enum Parse {
        case supported(HTTPVersion)
        case unsupported
        case malformed
    }

    static func parse(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Parse {
        guard end &- start == 8,
              buf[start] == 0x48, buf[start &+ 1] == 0x54, buf[start &+ 2] == 0x54,   // "HTT"
              buf[start &+ 3] == 0x50, buf[start &+ 4] == ASCII.slash,                // "P/"
              HTTPSyntax.isDigit(buf[start &+ 5]), buf[start &+ 6] == 0x2E,           // D "."
              HTTPSyntax.isDigit(buf[start &+ 7])                                     // D
        else { return .malformed }
        let major = buf[start &+ 5] &- ASCII.zero
        let minor = buf[start &+ 7] &- ASCII.zero
        guard major == 1, minor <= 1 else { return .unsupported }
        return .supported(HTTPVersion(major: major, minor: minor))
    }
}
