#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The claims the verifier checks or exposes, read from the decoded claims set in one pass.
/// Strings stay as ranges into the decoded bytes until a check or `VerifiedUser` needs them.
struct SupabaseClaims {
    var exp: Int64?
    var nbf: Int64?
    var iss: JSONStringToken?
    var role: JSONStringToken?
    var sub: JSONStringToken?
    var email: JSONStringToken?
    var sessionID: JSONStringToken?
    var appMetadata: Range<Int>?
    var isAnonymous = false
    var hasAudience = false
    var audienceMatches = false

    /// Bits for the members we read, to refuse repeats: with two `role` members one JSON
    /// parser takes the first and another the last, and a token must mean one thing.
    private enum Seen: UInt16 {
        case exp = 1, nbf = 2, iss = 4, aud = 8, role = 16, sub = 32, email = 64, sessionID = 128,
             appMetadata = 256, isAnonymous = 512
    }

    /// Parses the claims set; `audience` is compared while `aud` is read (it may be an array).
    /// Nil when the claims set is malformed (not one object, bad JSON, a read claim of the
    /// wrong type or repeated).
    static func parse(_ s: inout JSONScanner, audience: UnsafeRawBufferPointer) -> SupabaseClaims? {
        guard s.beginObject() else { return nil }
        var c = SupabaseClaims()
        var seen: UInt16 = 0
        func mark(_ m: Seen) -> Bool {
            defer { seen |= m.rawValue }
            return seen & m.rawValue == 0
        }
        var first = true
        while true {
            switch s.nextMember(first: &first) {
            case .end:
                return s.atEndOfInput() ? c : nil
            case .invalid:
                return nil
            case .key(let key):
                let ok: Bool
                switch key.end - key.start {
                case 3:
                    if s.string(key, equals: "exp") {
                        ok = mark(.exp) && { c.exp = s.readNumericDate(); return c.exp != nil }()
                    } else if s.string(key, equals: "nbf") {
                        ok = mark(.nbf) && { c.nbf = s.readNumericDate(); return c.nbf != nil }()
                    } else if s.string(key, equals: "iss") {
                        ok = mark(.iss) && { c.iss = s.readString(); return c.iss != nil }()
                    } else if s.string(key, equals: "sub") {
                        ok = mark(.sub) && { c.sub = s.readString(); return c.sub != nil }()
                    } else if s.string(key, equals: "aud") {
                        ok = mark(.aud) && readAudience(&s, into: &c, audience: audience)
                    } else {
                        ok = s.skipValue()
                    }
                case 4 where s.string(key, equals: "role"):
                    ok = mark(.role) && { c.role = s.readString(); return c.role != nil }()
                case 5 where s.string(key, equals: "email"):
                    ok = mark(.email) && readOptionalString(&s, into: &c.email)
                case 10 where s.string(key, equals: "session_id"):
                    ok = mark(.sessionID) && readOptionalString(&s, into: &c.sessionID)
                case 12 where s.string(key, equals: "app_metadata"):
                    ok = mark(.appMetadata) && {
                        if s.readLiteral("null") { return true }
                        c.appMetadata = s.rawValue()
                        return c.appMetadata != nil
                    }()
                case 12 where s.string(key, equals: "is_anonymous"):
                    ok = mark(.isAnonymous) && {
                        if s.readLiteral("true") { c.isAnonymous = true; return true }
                        return s.readLiteral("false") || s.readLiteral("null")
                    }()
                default:
                    // Escaped keys can decode to a name of another length; compare the slow way.
                    if key.hasEscapes, let name = s.decoded(key), Self.readNames.contains(name) { return nil }
                    ok = s.skipValue()
                }
                guard ok else { return nil }
            }
        }
    }

    /// Names read above; an escaped spelling of one of them is refused rather than ignored
    /// (escaping a key is legal JSON, but no issuer does it, and ignoring it would let a second,
    /// differently spelled `role` slip past the repeat check).
    private static let readNames: Set<[UInt8]> = Set(
        ["exp", "nbf", "iss", "sub", "aud", "role", "email", "session_id", "app_metadata", "is_anonymous"].map { Array($0.utf8) })

    private static func readOptionalString(_ s: inout JSONScanner, into field: inout JSONStringToken?) -> Bool {
        if s.readLiteral("null") { return true }
        field = s.readString()
        return field != nil
    }

    /// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
    private static func readAudience(_ s: inout JSONScanner, into c: inout SupabaseClaims, audience: UnsafeRawBufferPointer) -> Bool {
        c.hasAudience = true
        if s.current == UInt8(ascii: "[") {
            s.index += 1
            s.skipWhitespace()
            if s.current == UInt8(ascii: "]") {
                s.index += 1
                return true
            }
            while true {
                s.skipWhitespace()
                guard let v = s.readString() else { return false }
                if s.string(v, equals: audience) { c.audienceMatches = true }
                s.skipWhitespace()
                guard let next = s.current else { return false }
                s.index += 1
                if next == UInt8(ascii: "]") { return true }
                guard next == UInt8(ascii: ",") else { return false }
            }
        }
        guard let v = s.readString() else { return false }
        c.audienceMatches = s.string(v, equals: audience)
        return true
    }

    /// Parses the canonical 8-4-4-4-12 hex form (either case), the only form Supabase emits.
    static func uuid(_ token: JSONStringToken, in s: JSONScanner) -> UUID? {
        guard !token.hasEscapes, token.end - token.start == 36 else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            var i = token.start, o = 0
            while o < 16 {
                let offset = i - token.start
                if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                    guard s.bytes[i] == UInt8(ascii: "-") else { return false }
                    i += 1
                    continue
                }
                guard let hi = JSONScanner.hexValue(s.bytes[i]), let lo = JSONScanner.hexValue(s.bytes[i + 1]) else { return false }
                out[o] = hi << 4 | lo
                o += 1
                i += 2
            }
            return true
        }
        return ok ? UUID(uuid: bytes) : nil
    }
}
