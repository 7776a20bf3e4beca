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

    /// The members we read, as bits, to refuse repeats: with two `role` members one JSON
    /// parser takes the first and another the last, and a token must mean one thing.
    private enum Field: UInt16 {
        case exp = 1, nbf = 2, iss = 4, aud = 8, role = 16, sub = 32, email = 64, sessionID = 128,
             appMetadata = 256, isAnonymous = 512

        /// The field a key names (raw, unescaped spelling only), or nil for members we skip.
        /// Dispatches on length and first byte so that each key costs at most one comparison
        /// (a Supabase claims set has ~15 members, most of which we skip).
        init?(_ key: JSONStringToken, in s: JSONScanner) {
            guard !key.hasEscapes, key.end > key.start else { return nil }
            let candidate: (Field, StaticString)
            switch (key.end - key.start, s.bytes[key.start]) {
            case (3, UInt8(ascii: "e")): candidate = (.exp, "exp")
            case (3, UInt8(ascii: "n")): candidate = (.nbf, "nbf")
            case (3, UInt8(ascii: "i")): candidate = (.iss, "iss")
            case (3, UInt8(ascii: "a")): candidate = (.aud, "aud")
            case (3, UInt8(ascii: "s")): candidate = (.sub, "sub")
            case (4, UInt8(ascii: "r")): candidate = (.role, "role")
            case (5, UInt8(ascii: "e")): candidate = (.email, "email")
            case (10, UInt8(ascii: "s")): candidate = (.sessionID, "session_id")
            case (12, UInt8(ascii: "a")): candidate = (.appMetadata, "app_metadata")
            case (12, UInt8(ascii: "i")): candidate = (.isAnonymous, "is_anonymous")
            default: return nil
            }
            guard s.string(key, equals: candidate.1) else { return nil }
            self = candidate.0
        }
    }

    /// Parses the claims set; `audience` is compared while `aud` is read (it may be an array).
    /// Nil when the claims set is malformed (not one object, bad JSON, a read claim of the
    /// wrong type or repeated).
    static func parse(_ s: inout JSONScanner, audience: UnsafeRawBufferPointer) -> SupabaseClaims? {
        guard s.beginObject() else { return nil }
        var c = SupabaseClaims()
        var seen: UInt16 = 0
        var first = true
        while true {
            switch s.nextMember(first: &first) {
            case .end:
                return s.atEndOfInput() ? c : nil
            case .invalid:
                return nil
            case .key(let key):
                guard let field = Field(key, in: s) else {
                    // An escaped spelling of a name we read is refused rather than skipped
                    // (legal JSON, but no issuer writes it, and skipping it would let a second,
                    // differently spelled `role` past the repeat check).
                    if key.hasEscapes, let name = s.decoded(key), Self.readNames.contains(name) { return nil }
                    guard s.skipValue() else { return nil }
                    continue
                }
                guard seen & field.rawValue == 0 else { return nil }
                seen |= field.rawValue
                let ok: Bool
                switch field {
                case .exp:
                    c.exp = s.readNumericDate()
                    ok = c.exp != nil
                case .nbf:
                    c.nbf = s.readNumericDate()
                    ok = c.nbf != nil
                case .iss:
                    c.iss = s.readString()
                    ok = c.iss != nil
                case .sub:
                    c.sub = s.readString()
                    ok = c.sub != nil
                case .role:
                    c.role = s.readString()
                    ok = c.role != nil
                case .aud:
                    ok = readAudience(&s, into: &c, audience: audience)
                case .email:
                    ok = readOptionalString(&s, into: &c.email)
                case .sessionID:
                    ok = readOptionalString(&s, into: &c.sessionID)
                case .appMetadata:
                    if s.readLiteral("null") {
                        ok = true
                    } else {
                        c.appMetadata = s.rawValue()
                        ok = c.appMetadata != nil
                    }
                case .isAnonymous:
                    if s.readLiteral("true") {
                        c.isAnonymous = true
                        ok = true
                    } else {
                        ok = s.readLiteral("false") || s.readLiteral("null")
                    }
                }
                guard ok else { return nil }
            }
        }
    }

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
