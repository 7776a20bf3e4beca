import Foundation
import HubStore
import HubTelemetry

// The JSON bodies of the identity endpoints (`protocol/openapi.yaml` describes them). Field
// names are snake_case on the wire; timestamps are RFC 3339 in UTC with milliseconds; ids are
// lower-case UUIDs (as Supabase writes `sub`); a field without a value is `null`, never absent.

extension UUID {
    /// The wire form of an id: lower case.
    var wire: String { lowercasedString }
}

/// Encodes every listed field, `nil` as `null` (synthesized `Encodable` would leave it out).
protocol NullEncodingBody: Encodable {
    associatedtype Keys: CodingKey
    func encodeFields(_ c: inout KeyedEncodingContainer<Keys>) throws
}

extension NullEncodingBody {
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try encodeFields(&c)
    }
}

enum WireTime {
    static func format(_ date: Date?) -> String? {
        guard let date else { return nil }
        return JSONText.timestamp(unixMillis: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}

struct OrgBody: Encodable {
    var id: String
    var name: String
    var slug: String
    var require_distinct_approver: Bool
    var auto_approved_kinds: [String]
    var created_at: String?

    init(_ org: Org) {
        id = org.id.wire
        name = org.name
        slug = org.slug
        require_distinct_approver = org.requireDistinctApprover
        auto_approved_kinds = org.autoApprovedKinds
        created_at = WireTime.format(org.createdAt)
    }
}

struct MemberBody: Encodable {
    var org_id: String
    var user_id: String
    var role: String
    init(_ m: Membership) {
        org_id = m.orgID.wire
        user_id = m.userID.wire
        role = m.role.rawValue
    }
}

struct APIKeyBody: NullEncodingBody {
    var record: APIKeyRecord
    /// The whole key: only in the answer to its creation (absent otherwise).
    var key: String?

    init(_ r: APIKeyRecord, key: String? = nil) {
        record = r
        self.key = key
    }

    enum Keys: String, CodingKey { case id, key, prefix, org_id, name, scopes, expires_at, revoked_at, last_used_at, created_at }
    func encodeFields(_ c: inout KeyedEncodingContainer<Keys>) throws {
        try c.encode(record.id.wire, forKey: .id)
        if let key { try c.encode(key, forKey: .key) }
        try c.encode(record.prefix, forKey: .prefix)
        try c.encode(record.orgID?.wire, forKey: .org_id)
        try c.encode(record.name, forKey: .name)
        try c.encode(record.scopes, forKey: .scopes)
        try c.encode(WireTime.format(record.expiresAt), forKey: .expires_at)
        try c.encode(WireTime.format(record.revokedAt), forKey: .revoked_at)
        try c.encode(WireTime.format(record.lastUsedAt), forKey: .last_used_at)
        try c.encode(WireTime.format(record.createdAt), forKey: .created_at)
    }
}

struct DeviceBody: NullEncodingBody {
    var device: Device
    var online: Bool

    init(_ d: Device, online: Bool) {
        device = d
        self.online = online
    }

    enum Keys: String, CodingKey { case id, org_id, name, state, online, last_seen_at, agent_version, metadata, created_at, updated_at }
    func encodeFields(_ c: inout KeyedEncodingContainer<Keys>) throws {
        try c.encode(device.id.wire, forKey: .id)
        try c.encode(device.orgID.wire, forKey: .org_id)
        try c.encode(device.name, forKey: .name)
        try c.encode(device.state.rawValue, forKey: .state)
        try c.encode(online, forKey: .online)
        try c.encode(WireTime.format(device.lastSeenAt), forKey: .last_seen_at)
        try c.encode(device.agentVersion, forKey: .agent_version)
        // `metadata` is a JSON object stored as text: sent as the object itself.
        try c.encode(JSONFragment(text: device.metadata), forKey: .metadata)
        try c.encode(WireTime.format(device.createdAt), forKey: .created_at)
        try c.encode(WireTime.format(device.updatedAt), forKey: .updated_at)
    }
}

/// A JSON value held as text, encoded as that value (an unreadable one as `{}`).
struct JSONFragment: Encodable {
    var text: String
    func encode(to encoder: Encoder) throws {
        let value = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .object([:])
        try value.encode(to: encoder)
    }
}

/// Any JSON value, decoded and encoded as it is.
enum JSONValue: Codable, Equatable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int64.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }
}

extension JSONValue {
    /// The JSON text of an object (keys sorted, so equal objects are equal text); nil for any
    /// other value.
    func objectText() throws -> String? {
        guard case .object = self else { return nil }
        return String(decoding: try Self.encoder.encode(self), as: UTF8.self)
    }

    /// Configured once: a `JSONEncoder` keeps no per-call state.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

struct Items<T: Encodable>: Encodable {
    var items: [T]
}

struct Page<T: Encodable>: NullEncodingBody {
    var items: [T]
    var next_cursor: String?

    enum Keys: String, CodingKey { case items, next_cursor }
    func encodeFields(_ c: inout KeyedEncodingContainer<Keys>) throws {
        try c.encode(items, forKey: .items)
        try c.encode(next_cursor, forKey: .next_cursor)
    }
}
