import struct Foundation.UUID
import HubStore

/// Who made a request: resolved once by the route's guard and read by the handler from
/// `RequestContext.principal`. No handler parses credentials.
public enum Principal: Sendable, Equatable {
    /// A route with no credential requirement (health, registration, device auth).
    case anonymous
    /// A device agent, by its session token.
    case device(DeviceIdentity)
    /// A customer, by a verified Supabase JWT, with the orgs it belongs to.
    case user(UserIdentity)
    /// A service integration, by an API key bound to one org (or hub-wide, for `admin`).
    case apiKey(APIKeyIdentity)
    /// The hub's operator: `--admin-token`, or an API key with scope `admin`.
    case admin(AdminIdentity)

    /// A short, log-safe description (`user:<uuid>`, `api_key:<uuid>`...): audit `actor_id`,
    /// rate-limit keys.
    public var actorKey: String {
        switch self {
        case .anonymous: return "anonymous"
        case .device(let d): return "device:\(d.deviceID.uuidString.lowercased())"
        case .user(let u): return "user:\(u.userID.uuidString.lowercased())"
        case .apiKey(let k): return "api_key:\(k.keyID.uuidString.lowercased())"
        case .admin(let a): return a.keyID.map { "api_key:\($0.uuidString.lowercased())" } ?? "admin_token"
        }
    }
}

public struct DeviceIdentity: Sendable, Equatable {
    public var deviceID: UUID
    public var orgID: UUID
    public init(deviceID: UUID, orgID: UUID) {
        self.deviceID = deviceID
        self.orgID = orgID
    }
}

public struct UserIdentity: Sendable, Equatable {
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

public struct APIKeyIdentity: Sendable, Equatable {
    public var keyID: UUID
    /// The org the key acts in; nil only for hub-wide admin keys.
    public var orgID: UUID?
    public var scopes: Set<String>
    public init(keyID: UUID, orgID: UUID?, scopes: Set<String>) {
        self.keyID = keyID
        self.orgID = orgID
        self.scopes = scopes
    }
}

public struct AdminIdentity: Sendable, Equatable {
    /// The admin API key used, or nil for `--admin-token`.
    public var keyID: UUID?
    public init(keyID: UUID?) { self.keyID = keyID }
}
