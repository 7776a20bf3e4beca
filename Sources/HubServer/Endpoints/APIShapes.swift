import Foundation
import HubStore

// The JSON bodies of the identity endpoints (`protocol/openapi.yaml` describes them). Field
// names are snake_case on the wire; timestamps are RFC 3339 in UTC with milliseconds.

enum WireTime {
    static func format(_ date: Date?) -> String? {
        guard let date else { return nil }
        return formatter.string(from: date)
    }
    nonisolated(unsafe) private static let formatter: ISO8601DateFormatter = {
        // ISO8601DateFormatter is thread-safe for formatting once configured.
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
}

struct OrgBody: Encodable {
    var id: UUID
    var name: String
    var slug: String
    var require_distinct_approver: Bool
    var auto_approved_kinds: [String]
    var created_at: String?

    init(_ org: Org) {
        id = org.id
        name = org.name
        slug = org.slug
        require_distinct_approver = org.requireDistinctApprover
        auto_approved_kinds = org.autoApprovedKinds
        created_at = WireTime.format(org.createdAt)
    }
}

struct MemberBody: Encodable {
    var org_id: UUID
    var user_id: UUID
    var role: String
    init(_ m: Membership) {
        org_id = m.orgID
        user_id = m.userID
        role = m.role.rawValue
    }
}

struct APIKeyBody: Encodable {
    var id: UUID
    /// The whole key: only in the answer to its creation.
    var key: String?
    var prefix: String
    var org_id: UUID?
    var name: String
    var scopes: [String]
    var expires_at: String?
    var revoked_at: String?
    var last_used_at: String?
    var created_at: String?

    init(_ r: APIKeyRecord, key: String? = nil) {
        id = r.id
        self.key = key
        prefix = r.prefix
        org_id = r.orgID
        name = r.name
        scopes = r.scopes
        expires_at = WireTime.format(r.expiresAt)
        revoked_at = WireTime.format(r.revokedAt)
        last_used_at = WireTime.format(r.lastUsedAt)
        created_at = WireTime.format(r.createdAt)
    }
}

struct DeviceBody: Encodable {
    var id: UUID
    var org_id: UUID
    var name: String
    var state: String
    var online: Bool
    var last_seen_at: String?
    var agent_version: String?
    var created_at: String?
    var updated_at: String?

    init(_ d: Device, online: Bool) {
        id = d.id
        org_id = d.orgID
        name = d.name
        state = d.state.rawValue
        self.online = online
        last_seen_at = WireTime.format(d.lastSeenAt)
        agent_version = d.agentVersion
        created_at = WireTime.format(d.createdAt)
        updated_at = WireTime.format(d.updatedAt)
    }
}

struct Items<T: Encodable>: Encodable {
    var items: [T]
}

struct Page<T: Encodable>: Encodable {
    var items: [T]
    var next_cursor: String?
}
