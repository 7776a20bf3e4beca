/// Why a token was not accepted. Every reason maps to HTTP 401 `unauthenticated` at the edge;
/// the reason and detail are for logs and audit (`user.auth_failed`), never for the client,
/// which must not learn which check failed.
public struct JWTRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The check that failed, in the order the verifier applies them.
    public enum Reason: String, Sendable, CaseIterable {
        /// Longer than `SupabaseJWTConfiguration.maxTokenBytes` (checked before any decoding).
        case tooLarge
        /// Not three canonical base64url segments, or a header/claims set that is not one
        /// well-formed JSON object, or a claim of the wrong JSON type, or a repeated claim.
        case malformed
        /// `alg` is not ES256, RS256, or HS256-with-a-configured-secret (`none` included).
        case unsupportedAlgorithm
        /// The header has `crit`: we implement no JWS extensions, so RFC 7515 §4.1.11 says reject.
        case unsupportedCriticalHeader
        /// ES256/RS256 without a `kid`, or a `kid` not in the current JWKS snapshot.
        case unknownKey
        /// The `kid` names a key of another algorithm (e.g. an EC key with `alg: RS256`).
        case algorithmMismatch
        /// The signature does not verify (tampered header, claims or signature).
        case badSignature
        /// No `exp` claim (a token without an expiry is never accepted).
        case missingClaim
        /// `now >= exp + leeway`.
        case expired
        /// `now + leeway < nbf`.
        case notYetValid
        /// `iss` differs from the configured issuer (or is missing while one is configured).
        case wrongIssuer
        /// `aud` (string or array) does not contain the configured audience.
        case wrongAudience
        /// `role` is not `authenticated` (`anon` and `service_role` tokens are refused).
        case wrongRole
        /// `sub` is missing or not a UUID.
        case badSubject
    }

    public let reason: Reason
    /// A fixed, human-readable explanation (string literals only: building a rejection costs
    /// no allocation, so a flood of bad tokens stays cheap).
    public let detail: String

    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}
