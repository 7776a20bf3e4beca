import ArgumentParser
import COpenSSL
import Foundation
import HubAuth

/// `hubctl mint-dev-jwt`: a Supabase-shaped HS256 access token for local development against a
/// hub started with `--supabase-jwt-secret`, so the customer API can be exercised without a
/// Supabase project.
struct MintDevJWT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mint-dev-jwt",
        abstract: "Mint an HS256 Supabase-style access token for local development.",
        discussion: """
            The token carries the claims a Supabase access token has (sub, aud "authenticated", \
            role, iss, iat, exp, email, session_id, …) and is signed with HMAC-SHA256 over the \
            secret's UTF-8 bytes, as the hub's --supabase-jwt-secret verifies it. Development only: \
            anyone holding the secret can mint any identity.
            """)

    @Option(help: ArgumentHelp("The hub's --supabase-jwt-secret (default: $DEVICEHUB_SUPABASE_JWT_SECRET).", valueName: "secret"))
    var secret: String?

    @Option(help: "User id (UUID) for sub (default: a random one).")
    var sub: String?

    @Option(help: "Email claim.")
    var email = "dev@example.com"

    @Option(help: "Lifetime in seconds.")
    var ttl = 3600

    @Option(help: "Issuer (iss) exactly as given.")
    var issuer: String?

    @Option(name: .customLong("supabase-url"), help: ArgumentHelp("Supabase project URL; iss becomes URL/auth/v1 (default: $DEVICEHUB_SUPABASE_URL, else the Supabase CLI's http://127.0.0.1:54321).", valueName: "url"))
    var supabaseURL: String?

    @Option(help: "Role claim.")
    var role = "authenticated"

    private static var environment: [String: String] { ProcessInfo.processInfo.environment }

    private var effectiveSecret: String? {
        if let secret, !secret.isEmpty { return secret }
        return Self.environment["DEVICEHUB_SUPABASE_JWT_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The issuer: `--issuer`, else `<supabase url>/auth/v1`.
    var effectiveIssuer: String {
        if let issuer { return issuer }
        var base = supabaseURL ?? Self.environment["DEVICEHUB_SUPABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:54321"
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/auth/v1"
    }

    func validate() throws {
        if effectiveSecret == nil { throw ValidationError("no secret: pass --secret or set DEVICEHUB_SUPABASE_JWT_SECRET") }
        if issuer != nil && supabaseURL != nil { throw ValidationError("give either --issuer or --supabase-url, not both") }
        if let sub, UUID(uuidString: sub) == nil { throw ValidationError("--sub must be a UUID") }
        if ttl <= 0 { throw ValidationError("--ttl must be positive") }
    }

    func run() throws {
        let now = Int(Date().timeIntervalSince1970)
        let claims = DevJWT.Claims(sub: (sub.flatMap(UUID.init(uuidString:)) ?? UUID()).uuidString.lowercased(),
                                   role: role, iss: effectiveIssuer, iat: now, exp: now + ttl, email: email,
                                   sessionID: UUID().uuidString.lowercased())
        print(try DevJWT.sign(claims, secret: Array(effectiveSecret!.utf8)))
    }
}

/// HS256 JWT signing (RFC 7519, RFC 7515 compact serialization).
enum DevJWT {
    /// A Supabase access token's payload.
    struct Claims: Encodable {
        var sub: String
        var aud = "authenticated"
        var role: String
        var iss: String
        var iat: Int
        var exp: Int
        var email: String
        var sessionID: String
        var phone = ""
        var aal = "aal1"
        var isAnonymous = false
        var appMetadata = AppMetadata()
        var userMetadata: [String: String] = [:]

        struct AppMetadata: Encodable {
            var provider = "email"
            var providers = ["email"]
        }

        enum CodingKeys: String, CodingKey {
            case sub, aud, role, iss, iat, exp, email, phone, aal
            case sessionID = "session_id", isAnonymous = "is_anonymous"
            case appMetadata = "app_metadata", userMetadata = "user_metadata"
        }
    }

    static func sign(_ claims: Claims, secret: [UInt8]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = Base64URLText.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URLText.encode(Array(try encoder.encode(claims)))
        let signingInput = Array("\(header).\(payload)".utf8)
        return "\(header).\(payload).\(Base64URLText.encode(HubCrypto.hmacSHA256(key: secret, signingInput)))"
    }
}
