/// What a Supabase access token must satisfy. Built once at startup from the hub's flags
/// (`--supabase-url`, `--supabase-jwt-secret`).
public struct SupabaseJWTConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// Required `iss` (`<supabase-url>/auth/v1`); nil skips the check (only sensible with a
    /// JWKS or secret that belongs to a single project).
    public var issuer: String?
    /// `aud` must be this string or an array containing it.
    public var audience: String
    /// Clock skew tolerated on `exp` and `nbf`, in seconds. Default 30: Supabase and the hub
    /// both run NTP, so real skew is well under a second, and 30 s only lengthens a revoked
    /// session by that much (access tokens live an hour) while absorbing a badly synced host.
    public var leewaySeconds: Int64
    /// The project's legacy JWT secret; HS256 tokens are accepted only when it is set. Used as
    /// its raw UTF-8 bytes (what Supabase signs with, not base64-decoded). At least 32 bytes.
    public var hs256Secret: String?
    /// Tokens longer than this are refused before any decoding. Default 8 KiB: a Supabase
    /// access token is ~800-1,500 bytes even with app_metadata.
    public var maxTokenBytes: Int

    /// The role every accepted token must carry.
    public static let requiredRole = "authenticated"

    public init(issuer: String?, audience: String = "authenticated", leewaySeconds: Int64 = 30,
                hs256Secret: String? = nil, maxTokenBytes: Int = 8192) {
        self.issuer = issuer
        self.audience = audience
        self.leewaySeconds = leewaySeconds
        self.hs256Secret = hs256Secret
        self.maxTokenBytes = maxTokenBytes
    }

    /// The configuration for a Supabase project URL (`https://<ref>.supabase.co`): issuer
    /// `<url>/auth/v1`; a trailing slash on the URL is ignored.
    public static func supabase(url: String, hs256Secret: String? = nil) -> Self {
        var base = Substring(url)
        while base.hasSuffix("/") { base = base.dropLast() }
        return Self(issuer: base + "/auth/v1", hs256Secret: hs256Secret)
    }

    /// A configuration the verifier refuses to start with.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Throws `Invalid` for values that would make verification unsafe or pointless.
    public func validate() throws(Invalid) {
        if let secret = hs256Secret, secret.utf8.count < 32 {
            // RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
            throw Invalid(description: "HS256 secret must be at least 32 bytes (got \(secret.utf8.count))")
        }
        guard (256...65536).contains(maxTokenBytes) else {
            throw Invalid(description: "maxTokenBytes must be within 256...65536 (got \(maxTokenBytes))")
        }
        guard (0...3600).contains(leewaySeconds) else {
            throw Invalid(description: "leewaySeconds must be within 0...3600 (got \(leewaySeconds))")
        }
        guard !audience.isEmpty else { throw Invalid(description: "audience must not be empty") }
        if let issuer, issuer.isEmpty { throw Invalid(description: "issuer must not be empty (use nil to skip the check)") }
    }

    /// Never prints the secret (configurations end up in startup logs).
    public var description: String {
        "SupabaseJWTConfiguration(issuer: \(issuer ?? "nil"), audience: \(audience), leeway: \(leewaySeconds)s, "
            + "hs256: \(hs256Secret == nil ? "off" : "on"), maxTokenBytes: \(maxTokenBytes))"
    }
}
