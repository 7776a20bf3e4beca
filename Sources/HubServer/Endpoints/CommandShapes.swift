import Foundation
import HubStore

// The JSON bodies of sessions and commands (protocol/openapi.yaml: Session, Command). Lease
// tokens are never shown to customers: they are the device's proof of a delivery.

struct SessionBody: NullEncodingBody {
    var s: DiagnosticSession
    init(_ s: DiagnosticSession) { self.s = s }

    enum Keys: String, CodingKey {
        case id, org_id, device_id, state, reason, requested_by, decided_by, decided_at, decision_note, expires_at, closed_at, created_at, updated_at
    }
    func encodeFields(_ c: inout KeyedEncodingContainer<Keys>) throws {
        try c.encode(s.id.wire, forKey: .id)
        try c.encode(s.orgID.wire, forKey: .org_id)
        try c.encode(s.deviceID.wire, forKey: .device_id)
        try c.encode(s.state.rawValue, forKey: .state)
        try c.encode(s.reason, forKey: .reason)
        try c.encode(s.requestedBy.wire, forKey: .requested_by)
        try c.encode(s.decidedBy?.wire, forKey: .decided_by)
        try c.encode(WireTime.format(s.decidedAt), forKey: .decided_at)
        try c.encode(s.decisionNote, forKey: .decision_note)
        try c.encode(WireTime.format(s.expiresAt), forKey: .expires_at)
        try c.encode(WireTime.format(s.closedAt), forKey: .closed_at)
        try c.encode(WireTime.format(s.createdAt), forKey: .created_at)
        try c.encode(WireTime.format(s.updatedAt), forKey: .updated_at)
    }
}

struct CommandBody: NullEncodingBody {
    var c: CommandRecord
    init(_ c: CommandRecord) { self.c = c }

    enum Keys: String, CodingKey {
        case id, org_id, session_id, device_id, kind, args, priority, state, needs_approval, proposed_by, decided_by, decided_at
        case ttl_seconds, expires_at, max_attempts, visibility_timeout_seconds, attempts, lease_expires_at, exit_code, output, result
        case finished_at, created_at, updated_at
    }
    func encodeFields(_ k: inout KeyedEncodingContainer<Keys>) throws {
        try k.encode(c.id.wire, forKey: .id)
        try k.encode(c.orgID.wire, forKey: .org_id)
        try k.encode(c.sessionID.wire, forKey: .session_id)
        try k.encode(c.deviceID.wire, forKey: .device_id)
        try k.encode(c.kind, forKey: .kind)
        try k.encode(JSONFragment(text: c.arguments), forKey: .args)
        try k.encode(c.priority.rawValue, forKey: .priority)
        try k.encode(c.state.rawValue, forKey: .state)
        try k.encode(c.needsApproval, forKey: .needs_approval)
        try k.encode(c.proposedBy, forKey: .proposed_by)
        try k.encode(c.decidedBy?.wire, forKey: .decided_by)
        try k.encode(WireTime.format(c.decidedAt), forKey: .decided_at)
        try k.encode(c.ttlSeconds, forKey: .ttl_seconds)
        try k.encode(WireTime.format(c.expiresAt), forKey: .expires_at)
        try k.encode(c.maxAttempts, forKey: .max_attempts)
        try k.encode(c.visibilityTimeoutSeconds, forKey: .visibility_timeout_seconds)
        try k.encode(c.attempts, forKey: .attempts)
        try k.encode(WireTime.format(c.leaseExpiresAt), forKey: .lease_expires_at)
        try k.encode(c.exitCode, forKey: .exit_code)
        try k.encode(c.outputSummary, forKey: .output)
        if let result = c.result { try k.encode(JSONFragment(text: result), forKey: .result) } else { try k.encodeNil(forKey: .result) }
        try k.encode(WireTime.format(c.finishedAt), forKey: .finished_at)
        try k.encode(WireTime.format(c.createdAt), forKey: .created_at)
        try k.encode(WireTime.format(c.updatedAt), forKey: .updated_at)
    }
}

/// The session list's cursor: the last session of a page (created_at in ms, id), base64url.
struct SessionCursor {
    var createdAtMillis: Int64
    var id: UUID

    init(_ s: DiagnosticSession) {
        createdAtMillis = Int64((s.createdAt.timeIntervalSince1970 * 1000).rounded(.down))
        id = s.id
    }

    init?(text: String) {
        guard text.utf8.count <= 128, let decoded = Base64URLCursor.decode(text) else { return nil }
        let parts = decoded.split(separator: " ")
        guard parts.count == 2, let ms = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else { return nil }
        createdAtMillis = ms
        self.id = id
    }

    var text: String { Base64URLCursor.encode("\(createdAtMillis) \(id.wire)") }
}

/// Cursor text: base64url without padding, so that clients treat it as opaque.
enum Base64URLCursor {
    static func encode(_ plain: String) -> String {
        Data(plain.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> String? {
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.utf8.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return String(data: data, encoding: .utf8)
    }
}
