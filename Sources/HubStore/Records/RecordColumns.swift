import Foundation

/// A column value on its way into either database, before the backend's own parameter type:
/// `RecordQuery` renders its placeholder (with any cast) in the database's dialect and each
/// backend binds it as its driver wants, so the mapping of a record to its columns is written
/// once.
enum RecordValue {
    case text(String)
    case int(Int64)
    case bool(Bool)
    case bytes([UInt8])
    case uuid(UUID)
    case date(Date)
    /// JSON text (jsonb / TEXT checked with json_valid).
    case json(String)
    /// A `text[]` column (a JSON array in SQLite).
    case textArray([String])
    /// An `inet` column (TEXT in SQLite).
    case inet(String)
    case null

    static func text(_ s: String?) -> RecordValue { s.map { .text($0) } ?? .null }
    static func uuid(_ u: UUID?) -> RecordValue { u.map { .uuid($0) } ?? .null }
    static func date(_ d: Date?) -> RecordValue { d.map { .date($0) } ?? .null }
    static func bytes(_ b: [UInt8]?) -> RecordValue { b.map { .bytes($0) } ?? .null }
    static func json(_ s: String?) -> RecordValue { s.map { .json($0) } ?? .null }
    static func int(_ i: Int?) -> RecordValue { i.map { .int(Int64($0)) } ?? .null }
}

/// How a column is read back: most as they are, some through a conversion in PostgreSQL
/// (`jsonb` and `text[]` as JSON text, `inet` without a mask).
enum RecordColumnKind {
    case plain, json, textArray, inet
}

/// A table's columns in the order the decoders below read them.
struct RecordTable {
    let name: String
    let columns: [(name: String, kind: RecordColumnKind)]

    static let orgs = RecordTable(name: "orgs", columns: [
        ("id", .plain), ("name", .plain), ("slug", .plain), ("require_distinct_approver", .plain),
        ("auto_approved_kinds", .textArray), ("created_at", .plain), ("updated_at", .plain),
    ])
    static let members = RecordTable(name: "org_members", columns: [("org_id", .plain), ("user_id", .plain), ("role", .plain)])
    static let devices = RecordTable(name: "devices", columns: [
        ("id", .plain), ("org_id", .plain), ("name", .plain), ("state", .plain), ("secret_hash", .plain),
        ("last_seen_at", .plain), ("agent_version", .plain), ("metadata", .json), ("created_at", .plain), ("updated_at", .plain),
    ])
    static let activationCodes = RecordTable(name: "activation_codes", columns: [
        ("id", .plain), ("org_id", .plain), ("device_id", .plain), ("code_hash", .plain), ("expires_at", .plain),
        ("attempts", .plain), ("max_attempts", .plain), ("used_at", .plain), ("created_by", .plain), ("created_at", .plain),
    ])
    static let apiKeys = RecordTable(name: "api_keys", columns: [
        ("id", .plain), ("org_id", .plain), ("name", .plain), ("prefix", .plain), ("key_hash", .plain), ("scopes", .textArray),
        ("expires_at", .plain), ("revoked_at", .plain), ("last_used_at", .plain), ("created_by", .plain), ("created_at", .plain),
    ])
    static let sessions = RecordTable(name: "diagnostic_sessions", columns: [
        ("id", .plain), ("org_id", .plain), ("device_id", .plain), ("requested_by", .plain), ("reason", .plain),
        ("state", .plain), ("decided_by", .plain), ("decided_at", .plain), ("decision_note", .plain),
        ("expires_at", .plain), ("closed_at", .plain), ("created_at", .plain), ("updated_at", .plain),
    ])
    static let commands = RecordTable(name: "commands", columns: [
        ("id", .plain), ("seq", .plain), ("org_id", .plain), ("session_id", .plain), ("device_id", .plain),
        ("kind", .plain), ("arguments", .json), ("priority", .plain), ("state", .plain), ("needs_approval", .plain),
        ("proposed_by", .plain), ("decided_by", .plain), ("decided_at", .plain), ("ttl_seconds", .plain),
        ("expires_at", .plain), ("max_attempts", .plain), ("visibility_timeout_seconds", .plain), ("attempts", .plain),
        ("lease_token", .plain), ("lease_expires_at", .plain), ("leased_at", .plain), ("exit_code", .plain),
        ("output_summary", .plain), ("result", .json), ("finished_at", .plain), ("created_at", .plain), ("updated_at", .plain),
        ("idempotency_key", .plain),
    ])
    static let commandEvents = RecordTable(name: "command_events", columns: [
        ("id", .plain), ("command_id", .plain), ("event", .plain), ("from_state", .plain), ("to_state", .plain),
        ("actor", .plain), ("detail", .json), ("at", .plain),
    ])
    static let logs = RecordTable(name: "execution_logs", columns: [
        ("command_id", .plain), ("seq", .plain), ("stream", .plain), ("line", .plain), ("at", .plain),
    ])
    static let audit = RecordTable(name: "audit_log", columns: [
        ("id", .plain), ("at", .plain), ("org_id", .plain), ("actor_type", .plain), ("actor_id", .plain),
        ("action", .plain), ("target_type", .plain), ("target_id", .plain), ("outcome", .plain),
        ("request_id", .plain), ("ip", .inet), ("detail", .json),
    ])
}

/// Column assignments of each record (for INSERT) and each change (for UPDATE ... SET).
/// Store-assigned columns (`commands.seq`, event and audit ids) are left out.
enum RecordColumns {
    typealias Assignments = [(column: String, value: RecordValue)]

    static func org(_ o: Org) -> Assignments {
        [("id", .uuid(o.id)), ("name", .text(o.name)), ("slug", .text(o.slug)),
         ("require_distinct_approver", .bool(o.requireDistinctApprover)), ("auto_approved_kinds", .textArray(o.autoApprovedKinds)),
         ("created_at", .date(o.createdAt)), ("updated_at", .date(o.updatedAt))]
    }

    static func device(_ d: Device) -> Assignments {
        [("id", .uuid(d.id)), ("org_id", .uuid(d.orgID)), ("name", .text(d.name)), ("state", .text(d.state.rawValue)),
         ("secret_hash", .bytes(d.secretHash)), ("last_seen_at", .date(d.lastSeenAt)), ("agent_version", .text(d.agentVersion)),
         ("metadata", .json(d.metadata)), ("created_at", .date(d.createdAt)), ("updated_at", .date(d.updatedAt))]
    }

    static func deviceChange(_ c: DeviceChange) -> Assignments {
        var a: Assignments = []
        if let v = c.name { a.append(("name", .text(v))) }
        if let v = c.state { a.append(("state", .text(v.rawValue))) }
        if let v = c.secretHash { a.append(("secret_hash", .bytes(v))) }
        if let v = c.lastSeenAt { a.append(("last_seen_at", .date(v))) }
        if let v = c.agentVersion { a.append(("agent_version", .text(v))) }
        if let v = c.metadata { a.append(("metadata", .json(v))) }
        a.append(("updated_at", .date(c.updatedAt)))
        return a
    }

    static func activationCode(_ c: ActivationCode) -> Assignments {
        [("id", .uuid(c.id)), ("org_id", .uuid(c.orgID)), ("device_id", .uuid(c.deviceID)), ("code_hash", .bytes(c.codeHash)),
         ("expires_at", .date(c.expiresAt)), ("attempts", .int(Int64(c.attempts))), ("max_attempts", .int(Int64(c.maxAttempts))),
         ("used_at", .date(c.usedAt)), ("created_by", .uuid(c.createdBy)), ("created_at", .date(c.createdAt))]
    }

    static func apiKey(_ k: APIKeyRecord) -> Assignments {
        [("id", .uuid(k.id)), ("org_id", .uuid(k.orgID)), ("name", .text(k.name)), ("prefix", .text(k.prefix)),
         ("key_hash", .bytes(k.keyHash)), ("scopes", .textArray(k.scopes)), ("expires_at", .date(k.expiresAt)),
         ("revoked_at", .date(k.revokedAt)), ("last_used_at", .date(k.lastUsedAt)), ("created_by", .uuid(k.createdBy)),
         ("created_at", .date(k.createdAt))]
    }

    static func session(_ s: DiagnosticSession) -> Assignments {
        [("id", .uuid(s.id)), ("org_id", .uuid(s.orgID)), ("device_id", .uuid(s.deviceID)), ("requested_by", .uuid(s.requestedBy)),
         ("reason", .text(s.reason)), ("state", .text(s.state.rawValue)), ("decided_by", .uuid(s.decidedBy)),
         ("decided_at", .date(s.decidedAt)), ("decision_note", .text(s.decisionNote)), ("expires_at", .date(s.expiresAt)),
         ("closed_at", .date(s.closedAt)), ("created_at", .date(s.createdAt)), ("updated_at", .date(s.updatedAt))]
    }

    /// The policy fields `updateOrgPolicy` sets; `updatedAt` always.
    static func orgPolicy(requireDistinctApprover: Bool?, autoApprovedKinds: [String]?, updatedAt: Date) -> Assignments {
        var a: Assignments = []
        if let v = requireDistinctApprover { a.append(("require_distinct_approver", .bool(v))) }
        if let v = autoApprovedKinds { a.append(("auto_approved_kinds", .textArray(v))) }
        a.append(("updated_at", .date(updatedAt)))
        return a
    }

    static func sessionChange(_ c: SessionChange) -> Assignments {
        var a: Assignments = []
        if let v = c.state { a.append(("state", .text(v.rawValue))) }
        if let v = c.decidedBy { a.append(("decided_by", .uuid(v))) }
        if let v = c.decidedAt { a.append(("decided_at", .date(v))) }
        if let v = c.decisionNote { a.append(("decision_note", .text(v))) }
        if let v = c.expiresAt { a.append(("expires_at", .date(v))) }
        if let v = c.closedAt { a.append(("closed_at", .date(v))) }
        a.append(("updated_at", .date(c.updatedAt)))
        return a
    }

    /// Without `seq`, which the store assigns.
    static func command(_ c: CommandRecord) -> Assignments {
        [("id", .uuid(c.id)), ("org_id", .uuid(c.orgID)), ("session_id", .uuid(c.sessionID)), ("device_id", .uuid(c.deviceID)),
         ("kind", .text(c.kind)), ("arguments", .json(c.arguments)), ("priority", .text(c.priority.rawValue)),
         ("state", .text(c.state.rawValue)), ("needs_approval", .bool(c.needsApproval)), ("proposed_by", .text(c.proposedBy)),
         ("decided_by", .uuid(c.decidedBy)), ("decided_at", .date(c.decidedAt)), ("ttl_seconds", .int(Int64(c.ttlSeconds))),
         ("expires_at", .date(c.expiresAt)), ("max_attempts", .int(Int64(c.maxAttempts))),
         ("visibility_timeout_seconds", .int(Int64(c.visibilityTimeoutSeconds))), ("attempts", .int(Int64(c.attempts))),
         ("lease_token", .uuid(c.leaseToken)), ("lease_expires_at", .date(c.leaseExpiresAt)), ("leased_at", .date(c.leasedAt)),
         ("exit_code", .int(c.exitCode)), ("output_summary", .text(c.outputSummary)), ("result", .json(c.result)),
         ("finished_at", .date(c.finishedAt)), ("created_at", .date(c.createdAt)), ("updated_at", .date(c.updatedAt)),
         ("idempotency_key", .text(c.idempotencyKey))]
    }

    static func commandChange(_ c: CommandChange) -> Assignments {
        var a: Assignments = []
        if let v = c.state { a.append(("state", .text(v.rawValue))) }
        if let v = c.decidedBy { a.append(("decided_by", .uuid(v))) }
        if let v = c.decidedAt { a.append(("decided_at", .date(v))) }
        if let v = c.attempts { a.append(("attempts", .int(Int64(v)))) }
        switch c.lease {
        case .set(let token, let expiresAt, let leasedAt)?:
            a += [("lease_token", .uuid(token)), ("lease_expires_at", .date(expiresAt)), ("leased_at", .date(leasedAt))]
        case .clear?:
            a += [("lease_token", .null), ("lease_expires_at", .null), ("leased_at", .null)]
        case nil:
            break
        }
        if let v = c.exitCode { a.append(("exit_code", .int(Int64(v)))) }
        if let v = c.outputSummary { a.append(("output_summary", .text(v))) }
        if let v = c.result { a.append(("result", .json(v))) }
        if let v = c.finishedAt { a.append(("finished_at", .date(v))) }
        a.append(("updated_at", .date(c.updatedAt)))
        return a
    }

    /// Without `id`, which the store assigns.
    static func commandEvent(_ e: CommandEvent) -> Assignments {
        [("command_id", .uuid(e.commandID)), ("event", .text(e.event)), ("from_state", .text(e.fromState?.rawValue)),
         ("to_state", .text(e.toState?.rawValue)), ("actor", .text(e.actor)), ("detail", .json(e.detail)), ("at", .date(e.at))]
    }

    static func logLine(_ l: ExecutionLogLine) -> Assignments {
        [("command_id", .uuid(l.commandID)), ("seq", .int(l.seq)), ("stream", .text(l.stream.rawValue)), ("line", .text(l.line)), ("at", .date(l.at))]
    }

    /// Without `id`, which the store assigns.
    static func audit(_ a: AuditEntry) -> Assignments {
        [("at", .date(a.at)), ("org_id", .uuid(a.orgID)), ("actor_type", .text(a.actorType.rawValue)), ("actor_id", .text(a.actorID)),
         ("action", .text(a.action)), ("target_type", .text(a.targetType)), ("target_id", .text(a.targetID)),
         ("outcome", .text(a.outcome.rawValue)), ("request_id", .text(a.requestID)), ("ip", a.ip.map { .inet($0) } ?? .null),
         ("detail", .json(a.detail))]
    }
}

/// One result row as the record decoders read it, whatever the backend: cells by position, in
/// the order of the table's `RecordTable.columns`. Errors are `StoreError.backend` (a row that
/// does not decode is a schema mismatch, not the caller's fault).
protocol RecordCells: Sendable {
    func isNull(_ i: Int) -> Bool
    func string(_ i: Int) throws(StoreError) -> String
    func int(_ i: Int) throws(StoreError) -> Int64
    func bool(_ i: Int) throws(StoreError) -> Bool
    func bytes(_ i: Int) throws(StoreError) -> [UInt8]
    func uuid(_ i: Int) throws(StoreError) -> UUID
    /// A timestamp, not yet normalized to its millisecond.
    func rawDate(_ i: Int) throws(StoreError) -> Date
}

extension RecordCells {
    func date(_ i: Int) throws(StoreError) -> Date { RecordTime.normalized(try rawDate(i)) }
    func optDate(_ i: Int) throws(StoreError) -> Date? { isNull(i) ? nil : try date(i) }
    func optString(_ i: Int) throws(StoreError) -> String? { isNull(i) ? nil : try string(i) }
    func optUUID(_ i: Int) throws(StoreError) -> UUID? { isNull(i) ? nil : try uuid(i) }
    func optBytes(_ i: Int) throws(StoreError) -> [UInt8]? { isNull(i) ? nil : try bytes(i) }
    func optInt(_ i: Int) throws(StoreError) -> Int? { isNull(i) ? nil : Int(try int(i)) }

    func value<E: RawRepresentable>(_ type: E.Type, _ i: Int) throws(StoreError) -> E where E.RawValue == String {
        let s = try string(i)
        guard let v = E(rawValue: s) else { throw .backend("column \(i): unknown \(E.self) \"\(s.prefix(64))\"") }
        return v
    }

    func optValue<E: RawRepresentable>(_ type: E.Type, _ i: Int) throws(StoreError) -> E? where E.RawValue == String {
        isNull(i) ? nil : try value(type, i)
    }

    /// A JSON array of strings (a `text[]` column).
    func stringArray(_ i: Int) throws(StoreError) -> [String] {
        let s = try string(i)
        guard let a = try? JSONDecoder().decode([String].self, from: Data(s.utf8)) else { throw .backend("column \(i): not a JSON array of strings") }
        return a
    }
}

/// Records from rows laid out as `RecordTable`'s columns.
enum RecordDecoding {
    static func org(_ c: any RecordCells) throws(StoreError) -> Org {
        Org(id: try c.uuid(0), name: try c.string(1), slug: try c.string(2), requireDistinctApprover: try c.bool(3),
            autoApprovedKinds: try c.stringArray(4), createdAt: try c.date(5), updatedAt: try c.date(6))
    }

    static func membership(_ c: any RecordCells) throws(StoreError) -> Membership {
        Membership(orgID: try c.uuid(0), userID: try c.uuid(1), role: try c.value(MemberRole.self, 2))
    }

    static func device(_ c: any RecordCells) throws(StoreError) -> Device {
        Device(id: try c.uuid(0), orgID: try c.uuid(1), name: try c.string(2), state: try c.value(DeviceState.self, 3),
               secretHash: try c.optBytes(4), lastSeenAt: try c.optDate(5), agentVersion: try c.optString(6),
               metadata: try c.string(7), createdAt: try c.date(8), updatedAt: try c.date(9))
    }

    static func activationCode(_ c: any RecordCells) throws(StoreError) -> ActivationCode {
        ActivationCode(id: try c.uuid(0), orgID: try c.uuid(1), deviceID: try c.uuid(2), codeHash: try c.bytes(3),
                       expiresAt: try c.date(4), attempts: Int(try c.int(5)), maxAttempts: Int(try c.int(6)),
                       usedAt: try c.optDate(7), createdBy: try c.optUUID(8), createdAt: try c.date(9))
    }

    static func apiKey(_ c: any RecordCells) throws(StoreError) -> APIKeyRecord {
        APIKeyRecord(id: try c.uuid(0), orgID: try c.optUUID(1), name: try c.string(2), prefix: try c.string(3), keyHash: try c.bytes(4),
                     scopes: try c.stringArray(5), expiresAt: try c.optDate(6), revokedAt: try c.optDate(7), lastUsedAt: try c.optDate(8),
                     createdBy: try c.optUUID(9), createdAt: try c.date(10))
    }

    static func session(_ c: any RecordCells) throws(StoreError) -> DiagnosticSession {
        DiagnosticSession(id: try c.uuid(0), orgID: try c.uuid(1), deviceID: try c.uuid(2), requestedBy: try c.uuid(3),
                          reason: try c.string(4), state: try c.value(SessionState.self, 5), decidedBy: try c.optUUID(6),
                          decidedAt: try c.optDate(7), decisionNote: try c.optString(8), expiresAt: try c.optDate(9),
                          closedAt: try c.optDate(10), createdAt: try c.date(11), updatedAt: try c.date(12))
    }

    static func command(_ c: any RecordCells) throws(StoreError) -> CommandRecord {
        CommandRecord(id: try c.uuid(0), seq: try c.int(1), orgID: try c.uuid(2), sessionID: try c.uuid(3), deviceID: try c.uuid(4),
                      kind: try c.string(5), arguments: try c.string(6), priority: try c.value(QueuePriority.self, 7),
                      state: try c.value(CommandState.self, 8), needsApproval: try c.bool(9), proposedBy: try c.string(10),
                      decidedBy: try c.optUUID(11), decidedAt: try c.optDate(12), ttlSeconds: Int(try c.int(13)),
                      expiresAt: try c.date(14), maxAttempts: Int(try c.int(15)), visibilityTimeoutSeconds: Int(try c.int(16)),
                      attempts: Int(try c.int(17)), leaseToken: try c.optUUID(18), leaseExpiresAt: try c.optDate(19),
                      leasedAt: try c.optDate(20), exitCode: try c.optInt(21), outputSummary: try c.optString(22),
                      result: try c.optString(23), finishedAt: try c.optDate(24), createdAt: try c.date(25), updatedAt: try c.date(26),
                      idempotencyKey: try c.optString(27))
    }

    /// A row of `queueDepth`'s select list: org_id, state, priority, count, oldest created_at.
    static func queueDepthRow(_ c: any RecordCells) throws(StoreError) -> QueueDepthRow {
        QueueDepthRow(orgID: try c.uuid(0), state: try c.value(CommandState.self, 1), priority: try c.value(QueuePriority.self, 2),
                      count: Int(try c.int(3)), oldestCreatedAt: try c.date(4))
    }

    static func commandEvent(_ c: any RecordCells) throws(StoreError) -> CommandEvent {
        CommandEvent(id: try c.int(0), commandID: try c.uuid(1), event: try c.string(2), fromState: try c.optValue(CommandState.self, 3),
                     toState: try c.optValue(CommandState.self, 4), actor: try c.optString(5), detail: try c.string(6), at: try c.date(7))
    }

    static func logLine(_ c: any RecordCells) throws(StoreError) -> ExecutionLogLine {
        ExecutionLogLine(commandID: try c.uuid(0), seq: try c.int(1), stream: try c.value(LogStream.self, 2), line: try c.string(3), at: try c.date(4))
    }

    static func audit(_ c: any RecordCells) throws(StoreError) -> AuditEntry {
        AuditEntry(id: try c.int(0), at: try c.date(1), orgID: try c.optUUID(2), actorType: try c.value(AuditActorType.self, 3),
                   actorID: try c.optString(4), action: try c.string(5), targetType: try c.optString(6), targetID: try c.optString(7),
                   outcome: try c.value(AuditOutcome.self, 8), requestID: try c.optString(9), ip: try c.optString(10), detail: try c.string(11))
    }
}

extension RecordValue {
    /// `strings` as a JSON array (how both backends pass a list of texts in one parameter).
    static func jsonArray(_ strings: [String]) throws(StoreError) -> String {
        guard let data = try? JSONEncoder().encode(strings) else { throw .backend("cannot encode a list of strings as JSON") }
        return String(decoding: data, as: UTF8.self)
    }
}
