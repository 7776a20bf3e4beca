import struct Foundation.UUID
import HubStore

/// Who made a request: resolved once by a route's guard (the server's identity layer) and read
/// by the handler from its request context. No handler parses credentials.
public enum Principal: Sendable, Equatable {
    /// A route with no credential requirement (health, registration, device auth).
    case anonymous
    /// A device agent, by its session token.
    case device(DevicePrincipal)
    /// A customer, by a verified Supabase JWT, with the orgs it belongs to.
    case user(UserPrincipal)
    /// A service integration, by an API key bound to one org.
    case apiKey(APIKeyPrincipal)
    /// The hub's operator: `--admin-token`, or a hub-wide API key with scope `admin`.
    case admin(AdminPrincipal)

    /// A short, log-safe description (`user:<uuid>`, `api_key:<uuid>`...): audit `actor_id`,
    /// rate-limit keys.
    public var actorKey: String {
        switch self {
        case .anonymous: return "anonymous"
        case .device(let d): return "device:\(d.deviceID.lowercasedString)"
        case .user(let u): return "user:\(u.userID.lowercasedString)"
        case .apiKey(let k): return "api_key:\(k.keyID.lowercasedString)"
        case .admin(let a): return a.keyID.map { "api_key:\($0.lowercasedString)" } ?? "admin_token"
        }
    }
}

public struct UserPrincipal: Sendable, Equatable {
    /// The JWT `sub`: the Supabase user id.
    public var userID: UUID
    /// Role per org, from the hub's own membership records (never from the token's
    /// `user_metadata`, which the user can edit).
    public var roles: [UUID: MemberRole]
    /// The token's `exp` (unix seconds): a WebSocket authenticated with it closes then.
    public var expiresAt: Int64
    public init(userID: UUID, roles: [UUID: MemberRole], expiresAt: Int64) {
        self.userID = userID
        self.roles = roles
        self.expiresAt = expiresAt
    }
}

public struct AdminPrincipal: Sendable, Equatable {
    /// The admin API key used, or nil for `--admin-token`.
    public var keyID: UUID?
    public init(keyID: UUID?) { self.keyID = keyID }
}
