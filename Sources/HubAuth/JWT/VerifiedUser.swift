#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The identity a verified Supabase access token carries. Only claims the hub may rely on are
/// exposed: `app_metadata` (writable by the Supabase project's service role only) is passed
/// through as raw JSON; `user_metadata` (writable by the user) is deliberately never read.
public struct VerifiedUser: Sendable, Equatable {
    /// `sub`: the Supabase user id.
    public var userID: UUID
    /// `exp`, Unix seconds. A cached verification answers until `expiresAt + leeway`.
    public var expiresAt: Int64
    /// `email`, when present and a string.
    public var email: String?
    /// `session_id`, when present and a UUID (nil otherwise).
    public var sessionID: UUID?
    /// The `app_metadata` value exactly as it appears in the token (JSON text), when present and
    /// not `null`.
    public var appMetadataJSON: String?
    /// `is_anonymous`: Supabase anonymous sign-ins also carry `role: authenticated`; callers that
    /// must refuse them check this.
    public var isAnonymous: Bool

    public init(userID: UUID, expiresAt: Int64, email: String? = nil, sessionID: UUID? = nil,
                appMetadataJSON: String? = nil, isAnonymous: Bool = false) {
        self.userID = userID
        self.expiresAt = expiresAt
        self.email = email
        self.sessionID = sessionID
        self.appMetadataJSON = appMetadataJSON
        self.isAnonymous = isAnonymous
    }
}
