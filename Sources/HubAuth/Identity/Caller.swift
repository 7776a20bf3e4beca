import struct Foundation.UUID
import HubStore

/// Who is asking, as the audit trail records it, with the request's network facts. The HTTP
/// layer builds one per request after authenticating it; services take it instead of loose
/// ids so that every audited action names its actor the same way.
public struct Caller: Sendable, Equatable {
    public var actorType: AuditActorType
    /// A user id, API key id, device id, or a fixed name for the system (`admin-token`).
    public var actorID: String?
    /// The user behind the call (`createdBy` of what it creates); nil for keys and the system.
    public var userID: UUID?
    /// The client's address in text form (rate limits per IP, audit).
    public var ip: String?
    public var requestID: String?

    public init(actorType: AuditActorType, actorID: String?, userID: UUID? = nil, ip: String? = nil, requestID: String? = nil) {
        self.actorType = actorType
        self.actorID = actorID
        self.userID = userID
        self.ip = ip.map { String(decoding: $0.utf8.prefix(64), as: UTF8.self) }  // an address is at most 45 characters
        self.requestID = requestID.map { String(decoding: $0.utf8.prefix(128), as: UTF8.self) }
    }

    /// A signed-in user (Supabase JWT `sub`).
    public static func user(_ id: UUID, ip: String? = nil, requestID: String? = nil) -> Caller {
        Caller(actorType: .user, actorID: id.lowercasedString, userID: id, ip: ip, requestID: requestID)
    }

    /// A request authenticated by an API key.
    public static func apiKey(_ id: UUID, ip: String? = nil, requestID: String? = nil) -> Caller {
        Caller(actorType: .apiKey, actorID: id.lowercasedString, ip: ip, requestID: requestID)
    }

    /// A request authenticated by the `--admin-token`.
    public static func adminToken(ip: String? = nil, requestID: String? = nil) -> Caller {
        Caller(actorType: .system, actorID: "admin-token", ip: ip, requestID: requestID)
    }

    /// A device (its own registration and authentication).
    public static func device(_ id: UUID?, ip: String? = nil, requestID: String? = nil) -> Caller {
        Caller(actorType: id == nil ? .anonymous : .device, actorID: id?.lowercasedString, ip: ip, requestID: requestID)
    }

    /// Not yet identified (a failed credential check).
    public static func anonymous(ip: String? = nil, requestID: String? = nil) -> Caller {
        Caller(actorType: .anonymous, actorID: nil, ip: ip, requestID: requestID)
    }
}
