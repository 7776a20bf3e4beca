import Atomics
import JWTKit

/// Verifies Supabase access tokens synchronously on the caller's thread (an event loop).
///
/// No `async`, actor hop or lock on the hot path, and no allocation of ours beyond the returned
/// `VerifiedUser` (jwt-kit/BoringSSL allocate a little inside RS256 checks): the token is
/// decoded into a stack buffer, the JOSE header and claims are read by
/// `JSONScanner`, and the signature is checked by a jwt-kit verifier prepared when the keys were
/// loaded. Keys live in an immutable `JWKSKeys` snapshot that `replaceKeys(_:)` swaps atomically
/// (see `KeyState`). Rules (docs/auth-jwt.md): ES256/RS256 chosen by `kid` from the JWKS, HS256
/// only with a configured secret; `exp`/`nbf` with leeway; `iss`, `aud`, `role ==
/// authenticated`, `sub` a UUID.
public final class SupabaseJWTVerifier: Sendable {
    public let configuration: SupabaseJWTConfiguration
    private let issuer: [UInt8]?
    private let audience: [UInt8]
    /// The HMAC verifier over the configured secret; nil refuses HS256 outright, so an HS256
    /// token is never checked against anything but that secret (no RSA/EC key ever reaches an
    /// HMAC: algorithm confusion is impossible by construction).
    private let hs256: (any JWTAlgorithm)?
    private let state: ManagedAtomic<KeyState>
    /// `state.epoch`, readable with one plain load for the cache hit path (loading `state`
    /// itself is a double-word compare-and-swap).
    private let epoch: ManagedAtomic<UInt64>

    /// Prepares a verifier; `async` because jwt-kit builds its HMAC verifier through its
    /// `JWTKeyCollection` actor. Throws `SupabaseJWTConfiguration.Invalid` for a bad configuration.
    public init(configuration: SupabaseJWTConfiguration, keys: JWKSKeys = .empty) async throws {
        try configuration.validate()
        self.configuration = configuration
        issuer = configuration.issuer.map { Array($0.utf8) }
        audience = Array(configuration.audience.utf8)
        if let secret = configuration.hs256Secret {
            let collection = JWTKeyCollection()
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            hs256 = try await collection.getKey()
        } else {
            hs256 = nil
        }
        let initial = KeyState(keys: keys)
        state = ManagedAtomic(initial)
        epoch = ManagedAtomic(initial.epoch)
    }

    /// The snapshot in use.
    public var keys: JWKSKeys { state.load(ordering: .acquiring).keys }

    /// Makes `keys` the snapshot every later verification uses, on every thread. Cached
    /// verifications made with the previous snapshot stop answering (a key removed from the
    /// JWKS must stop working at once). Callers skip the swap when nothing changed
    /// (`JWKSKeys.hasSameKeys(as:)`), which keeps the caches warm.
    public func replaceKeys(_ keys: JWKSKeys) {
        let next = KeyState(keys: keys)
        state.store(next, ordering: .releasing)
        epoch.store(next.epoch, ordering: .releasing)
    }

    // MARK: - Verification

    /// Verifies a token (without the `Bearer ` prefix). `nowSeconds` is the Unix time the
    /// checks use (the loop's cached clock). With a `cache`, a token verified before answers
    /// from it until it expires.
    public func verify(_ token: some StringProtocol, nowSeconds: Int64, cache: VerifiedTokenCache? = nil) -> Result<VerifiedUser, JWTRejection> {
        if let r = token.utf8.withContiguousStorageIfAvailable({ verify(bytes: UnsafeRawBufferPointer($0), nowSeconds: nowSeconds, cache: cache) }) {
            return r
        }
        return verify(Array(token.utf8), nowSeconds: nowSeconds, cache: cache)
    }

    public func verify(_ token: [UInt8], nowSeconds: Int64, cache: VerifiedTokenCache? = nil) -> Result<VerifiedUser, JWTRejection> {
        token.withUnsafeBytes { verify(bytes: $0, nowSeconds: nowSeconds, cache: cache) }
    }

    /// The core entry point: the token's bytes, e.g. a slice of a receive buffer.
    public func verify(bytes token: UnsafeRawBufferPointer, nowSeconds: Int64, cache: VerifiedTokenCache? = nil) -> Result<VerifiedUser, JWTRejection> {
        guard token.count <= configuration.maxTokenBytes else { return .failure(JWTRejection(.tooLarge, "token longer than the configured limit")) }
        guard !token.isEmpty else { return .failure(JWTRejection(.malformed, "empty token")) }
        if let cache, let user = cache.lookup(token, epoch: epoch.load(ordering: .relaxed), now: nowSeconds) {
            return .success(user)
        }
        let current = state.load(ordering: .acquiring)
        switch verifyUncached(token, now: nowSeconds, keys: current.keys) {
        case .success(let accepted):
            cache?.insert(token, user: accepted.user, validUntil: accepted.validUntil, validFrom: accepted.validFrom,
                          epoch: current.epoch, now: nowSeconds)
            return .success(accepted.user)
        case .failure(let rejection):
            return .failure(rejection)
        }
    }

    struct Accepted {
        var user: VerifiedUser
        var validUntil: Int64
        var validFrom: Int64
    }

    private func verifyUncached(_ token: UnsafeRawBufferPointer, now: Int64, keys: JWKSKeys) -> Result<Accepted, JWTRejection> {
        CompactJWS.withDecoded(token) { jws in
            let header: JOSEHeader
            switch JOSEHeader.parse(jws.header) {
            case .success(let h): header = h
            case .failure(let r): return .failure(r)
            }

            // The key decides; the header's alg must agree with it.
            let verifier: any JWTAlgorithm
            switch header.algorithm {
            case .hs256:
                guard let hs256 else { return .failure(JWTRejection(.unsupportedAlgorithm, "HS256 token but no shared secret configured")) }
                verifier = hs256
            case .es256, .rs256:
                guard let kid = header.keyID else { return .failure(JWTRejection(.unknownKey, "no kid in the header")) }
                let found: JWKSKeys.Key?
                if kid.hasEscapes {
                    found = JSONScanner(jws.header).decoded(kid).flatMap { id in id.withUnsafeBytes { keys.key(id: $0) } }
                } else {
                    found = keys.key(id: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(jws.header)[kid.start..<kid.end]))
                }
                guard let key = found else { return .failure(JWTRejection(.unknownKey, "kid not in the JWKS")) }
                guard key.algorithm == header.algorithm else { return .failure(JWTRejection(.algorithmMismatch, "kid names a key of another algorithm")) }
                verifier = key.verifier
            }
            let valid: Bool
            do {
                valid = try verifier.verify(jws.signature, signs: jws.signingInput)
            } catch {
                valid = false  // e.g. an ES256 signature that is not 64 bytes
            }
            guard valid else { return .failure(JWTRejection(.badSignature, "signature does not verify")) }

            return audience.withUnsafeBytes { audience in
                var scanner = JSONScanner(jws.payload)
                guard let claims = SupabaseClaims.parse(&scanner, audience: audience) else {
                    return .failure(JWTRejection(.malformed, "claims are not a valid JSON object of the expected types"))
                }
                return check(claims, scanner, now: now)
            }
        }
    }

    /// The claim rules, after the signature held.
    private func check(_ c: SupabaseClaims, _ s: JSONScanner, now: Int64) -> Result<Accepted, JWTRejection> {
        let leeway = configuration.leewaySeconds
        guard let exp = c.exp else { return .failure(JWTRejection(.missingClaim, "no exp claim")) }
        let (limit, overflow) = exp.addingReportingOverflow(leeway)
        let validUntil = overflow ? Int64.max : limit
        guard now < validUntil else { return .failure(JWTRejection(.expired, "token expired")) }
        var validFrom = Int64.min
        if let nbf = c.nbf {
            let (from, underflow) = nbf.subtractingReportingOverflow(leeway)
            validFrom = underflow ? .min : from
            guard now >= validFrom else { return .failure(JWTRejection(.notYetValid, "token not valid yet (nbf)")) }
        }
        if let issuer {
            let matches = c.iss.map { iss in issuer.withUnsafeBytes { s.string(iss, equals: $0) } } ?? false
            guard matches else { return .failure(JWTRejection(.wrongIssuer, "iss is not the configured issuer")) }
        }
        guard c.audienceMatches else { return .failure(JWTRejection(.wrongAudience, "aud does not contain the configured audience")) }
        guard let role = c.role, s.string(role, equals: "authenticated") else {
            return .failure(JWTRejection(.wrongRole, "role is not authenticated"))
        }
        guard let sub = c.sub, let userID = SupabaseClaims.uuid(sub, in: s) else {
            return .failure(JWTRejection(.badSubject, "sub is not a UUID"))
        }
        let user = VerifiedUser(
            userID: userID,
            expiresAt: exp,
            email: c.email.flatMap { s.stringValue($0) },
            sessionID: c.sessionID.flatMap { SupabaseClaims.uuid($0, in: s) },
            appMetadataJSON: c.appMetadata.map { String(decoding: UnsafeBufferPointer(rebasing: s.bytes[$0]), as: UTF8.self) },
            isAnonymous: c.isAnonymous)
        return .success(Accepted(user: user, validUntil: validUntil, validFrom: validFrom))
    }
}
