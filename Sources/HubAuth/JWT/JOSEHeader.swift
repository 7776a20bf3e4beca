/// The JWS algorithms the hub accepts. Anything else (`none`, HS384, PS256, ES384, EdDSA, ...)
/// is refused before any key is looked up.
enum JWSAlgorithm: Sendable, Equatable {
    case hs256, es256, rs256

    var name: String {
        switch self {
        case .hs256: "HS256"
        case .es256: "ES256"
        case .rs256: "RS256"
        }
    }
}

/// The parts of a JOSE header the verifier uses: `alg` and `kid`. Other members (`typ`, and
/// `jku`/`jwk`/`x5u`/`x5c`, which name or embed keys) are ignored: keys come only from the
/// configured JWKS, never from the token.
struct JOSEHeader {
    var algorithm: JWSAlgorithm
    /// Range of the `kid` string in the decoded header bytes (nil: no `kid`).
    var keyID: JSONStringToken?

    /// Parses a decoded header. The whole object is validated before any decision, so a
    /// malformed header is `.malformed` whatever its `alg` says.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JOSEHeader, JWTRejection> {
        var s = JSONScanner(bytes)
        guard s.beginObject() else { return .failure(JWTRejection(.malformed, "header is not a JSON object")) }
        var alg: JSONStringToken?
        var kid: JSONStringToken?
        var hasCrit = false
        var first = true
        loop: while true {
            switch s.nextMember(first: &first) {
            case .end:
                break loop
            case .invalid:
                return .failure(JWTRejection(.malformed, "header is not valid JSON"))
            case .key(let key):
                if s.string(key, equals: "alg") {
                    // A repeated member is ambiguous (parsers disagree on which wins): refuse.
                    guard alg == nil, let v = s.readString() else { return .failure(JWTRejection(.malformed, "header alg is repeated or not a string")) }
                    alg = v
                } else if s.string(key, equals: "kid") {
                    guard kid == nil, let v = s.readString() else { return .failure(JWTRejection(.malformed, "header kid is repeated or not a string")) }
                    kid = v
                } else {
                    if s.string(key, equals: "crit") { hasCrit = true }
                    guard s.skipValue() else { return .failure(JWTRejection(.malformed, "header is not valid JSON")) }
                }
            }
        }
        guard s.atEndOfInput() else { return .failure(JWTRejection(.malformed, "data after the header object")) }
        if hasCrit { return .failure(JWTRejection(.unsupportedCriticalHeader, "header has crit; no extensions are supported")) }
        guard let alg else { return .failure(JWTRejection(.malformed, "header has no alg")) }
        let algorithm: JWSAlgorithm
        if s.string(alg, equals: "ES256") {
            algorithm = .es256
        } else if s.string(alg, equals: "RS256") {
            algorithm = .rs256
        } else if s.string(alg, equals: "HS256") {
            algorithm = .hs256
        } else {
            return .failure(JWTRejection(.unsupportedAlgorithm, "alg is not ES256, RS256 or HS256"))
        }
        return .success(JOSEHeader(algorithm: algorithm, keyID: kid))
    }
}
