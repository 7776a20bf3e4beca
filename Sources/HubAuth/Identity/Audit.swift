import Foundation
import HubStore
import Logging

/// The audited actions (the plan's list; the `action` column holds the raw value).
public enum AuditAction: String, Sendable, CaseIterable {
    case deviceProvision = "device.provision"
    case deviceRegister = "device.register"
    case deviceRegisterFailed = "device.register_failed"
    case deviceAuthFailed = "device.auth_failed"
    case deviceDisable = "device.disable"
    case deviceEnable = "device.enable"
    case deviceRotateSecret = "device.rotate_secret"
    case apiKeyCreate = "api_key.create"
    case apiKeyRevoke = "api_key.revoke"
    case apiKeyAuthFailed = "api_key.auth_failed"
    case memberSet = "member.set"
    case memberRemove = "member.remove"
    case orgCreate = "org.create"
    case userAuthFailed = "user.auth_failed"
    case sessionOpen = "session.open"
    case sessionApprove = "session.approve"
    case sessionReject = "session.reject"
    case sessionClose = "session.close"
    case sessionExpire = "session.expire"
    case commandApprove = "command.approve"
    case commandReject = "command.reject"
    case commandCancel = "command.cancel"
    case orgPolicy = "org.policy"
}

/// Appends audit entries, with one rule for what a failed write does:
///
/// - `record` (throws): changes an operator makes — creating orgs, keys and devices, setting
///   members, disabling, rotating, revoking. The entry is written after the change and its
///   failure fails the request (503): an unaudited privileged change must not look like a
///   success. The change itself stays made; the operations are safe to retry (a lost one-time
///   secret is harmless: nobody holds it, and the retry makes a new one).
/// - `recordBestEffort` (never throws): credential events — failed registrations and logins,
///   and a device's own successful registration. A failed write is logged at error level and
///   the answer stands: an audit hiccup must not turn a 401 into a 503 (an attacker would learn
///   from the difference and the log still has the event), nor throw away a registration whose
///   secret cannot be shown again.
public struct AuditLog: Sendable {
    public let records: any RecordStore
    public let logger: Logger

    public init(records: any RecordStore, logger: Logger) {
        self.records = records
        self.logger = logger
    }

    /// Appends the entry; store failures propagate (`StoreError`).
    public func record(_ action: AuditAction, by caller: Caller, orgID: UUID?, target: AuditTarget?,
                       outcome: AuditOutcome = .success, detail: [String: String] = [:]) async throws(StoreError) {
        try await records.appendAudit(entry(action, caller, orgID, target, outcome, detail))
    }

    /// Appends the entry; a failure is logged, never thrown.
    public func recordBestEffort(_ action: AuditAction, by caller: Caller, orgID: UUID?, target: AuditTarget?,
                                 outcome: AuditOutcome, detail: [String: String] = [:]) async {
        do {
            try await records.appendAudit(entry(action, caller, orgID, target, outcome, detail))
        } catch {
            logger.error("audit write failed", metadata: [
                "action": .string(action.rawValue), "outcome": .string(outcome.rawValue),
                "target": .string(target.map { "\($0.type):\($0.id)" } ?? "-"),
                "ip": .string(caller.ip ?? "-"), "error": .string(error.description),
            ])
        }
    }

    private func entry(_ action: AuditAction, _ caller: Caller, _ orgID: UUID?, _ target: AuditTarget?,
                       _ outcome: AuditOutcome, _ detail: [String: String]) -> AuditEntry {
        AuditEntry(orgID: orgID, actorType: caller.actorType, actorID: caller.actorID, action: action.rawValue,
                   targetType: target?.type, targetID: target?.id, outcome: outcome, requestID: caller.requestID,
                   ip: caller.ip, detail: Self.json(detail))
    }

    /// A flat JSON object with sorted keys. Values come from the services (reasons, names,
    /// prefixes), never secrets.
    static func json(_ detail: [String: String]) -> String {
        guard !detail.isEmpty, let data = try? encoder.encode(detail) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Configured once: a `JSONEncoder` keeps no per-call state, so sharing it is safe.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// What an audit entry is about: `device` + id, `org` + id, `api_key` + id, `member` + user id.
public struct AuditTarget: Sendable, Equatable {
    public var type: String
    public var id: String

    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }

    public static func device(_ id: UUID) -> AuditTarget { AuditTarget(type: "device", id: id.lowercasedString) }
    public static func org(_ id: UUID) -> AuditTarget { AuditTarget(type: "org", id: id.lowercasedString) }
    public static func apiKey(_ id: UUID) -> AuditTarget { AuditTarget(type: "api_key", id: id.lowercasedString) }
    public static func member(_ userID: UUID) -> AuditTarget { AuditTarget(type: "user", id: userID.lowercasedString) }
    public static func session(_ id: UUID) -> AuditTarget { AuditTarget(type: "session", id: id.lowercasedString) }
    public static func command(_ id: UUID) -> AuditTarget { AuditTarget(type: "command", id: id.lowercasedString) }
}
