import Foundation
import HubAuth
import HubHTTP
import HubStore

/// Diagnostic sessions: an operator opens one for a device with a reason; an approver other than
/// the requester (four eyes, unless the org turned it off) approves or rejects it; a pending
/// session expires after `sessionApprovalTTL`. Commands are proposed only into an active
/// session, and closing it cancels those that have not started.
///
/// Org scoping is the caller's (the HTTP layer checks the record's org against the principal
/// before calling); these methods take the record it checked. Every state change is a
/// conditional update from the states it applies to, so two nodes deciding at once cannot both
/// win: the loser gets 409 with the state the winner left.
public struct SessionService: Sendable {
    let context: CommandContext

    public init(context: CommandContext) {
        self.context = context
    }

    public static let maxReasonLength = 2000
    public static let maxNoteLength = 2000

    /// Opens a session on `device` (pending approval). A disabled device is 409.
    public func open(device: Device, reason: String, by caller: Caller) async throws -> DiagnosticSession {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...Self.maxReasonLength).contains(reason.unicodeScalars.count) else { throw Problem.invalid("reason must be 1...\(Self.maxReasonLength) characters") }
        guard !reason.unicodeScalars.contains(where: { $0.value == 0 }) else { throw Problem.invalid("reason must not contain NUL") }
        guard device.state != .disabled else { throw Problem.illegalTransition("the device is disabled", state: device.state.rawValue) }
        guard let requester = caller.userID ?? caller.actorID.flatMap(UUID.init(uuidString:)) else {
            throw Problem.forbidden("sessions are opened by a user or an API key")
        }
        let now = Date.storeNow()
        let session = DiagnosticSession(orgID: device.orgID, deviceID: device.id, requestedBy: requester, reason: reason,
                                        expiresAt: now.addingTimeInterval(Double(context.configuration.sessionApprovalTTL.components.seconds)),
                                        createdAt: now)
        try await context.records.insertSession(session)
        try await context.audit.record(.sessionOpen, by: caller, orgID: session.orgID, target: .session(session.id),
                                       detail: ["device_id": device.id.lowercasedString])
        await context.emit(DomainEvents.sessionStatus(session))
        await context.emit(DomainEvents.sessionApprovalRequested(session))
        return session
    }

    /// The session, or 404.
    public func session(id: UUID) async throws -> DiagnosticSession {
        guard let s = try await context.records.session(id: id) else { throw Problem.missing("session") }
        return s
    }

    /// An approver's yes: pending → active. Self-approval under four eyes is 403; a pending
    /// session past its approval deadline ends as expired (409 `expired`).
    public func approve(_ session: DiagnosticSession, org: Org, note: String?, by caller: Caller) async throws -> DiagnosticSession {
        try await decide(session, org: org, note: note, by: caller, to: .active)
    }

    /// An approver's no: pending → rejected. Anyone with the role may reject, the requester too
    /// (withdrawing is harmless; only a yes needs a second person).
    public func reject(_ session: DiagnosticSession, org: Org, note: String?, by caller: Caller) async throws -> DiagnosticSession {
        try await decide(session, org: org, note: note, by: caller, to: .rejected)
    }

    private func decide(_ session: DiagnosticSession, org: Org, note: String?, by caller: Caller, to state: SessionState) async throws -> DiagnosticSession {
        guard let approver = caller.userID else { throw Problem.forbidden("approvals are made by people: sign in as a user") }
        let note = try Self.checkedNote(note)
        // The state first: a decided or expired session answers 409 to anyone.
        guard session.state == .pendingApproval else {
            throw Problem.illegalTransition("the session is \(session.state.rawValue), not pending_approval", state: session.state.rawValue)
        }
        let now = Date.storeNow()
        if let deadline = session.expiresAt, deadline <= now {
            _ = try await expire(session, now: now)
            throw Problem.illegalTransition("the session's approval deadline passed", state: SessionState.expired.rawValue)
        }
        if state == .active && org.requireDistinctApprover && session.requestedBy == approver { throw Problem.fourEyes("session") }
        let change = SessionChange(state: state, decidedBy: approver, decidedAt: now, decisionNote: note, updatedAt: now)
        let decided: DiagnosticSession
        switch try await context.records.updateSession(id: session.id, expected: [.pendingApproval], change: change) {
        case .updated(let s): decided = s
        case .conflict(let current): throw Problem.illegalTransition("the session is \(current.state.rawValue), not pending_approval", state: current.state.rawValue)
        case .notFound: throw Problem.missing("session")
        }
        context.metrics.approvalWait.observe(nanoseconds: Int(max(0, now.timeIntervalSince(session.createdAt)) * 1e9), shard: QueueMetrics.shard)
        try await context.audit.record(state == .active ? .sessionApprove : .sessionReject, by: caller, orgID: session.orgID,
                                       target: .session(session.id))
        await context.emit(DomainEvents.sessionStatus(decided))
        await context.emit(DomainEvents.approvalDecided(subject: "session", id: decided.id, sessionID: decided.id, deviceID: decided.deviceID,
                                                        orgID: decided.orgID, decision: state == .active ? "approved" : "rejected", decidedBy: approver))
        return decided
    }

    /// pending_approval or active → closed; then cancels the session's commands that have not
    /// started (pending approval or queued). Claimed ones run to their result.
    public func close(_ session: DiagnosticSession, by caller: Caller, commands: CommandService) async throws -> DiagnosticSession {
        let now = Date.storeNow()
        let closed: DiagnosticSession
        switch try await context.records.updateSession(id: session.id, expected: [.pendingApproval, .active],
                                                       change: SessionChange(state: .closed, closedAt: now, updatedAt: now)) {
        case .updated(let s): closed = s
        case .conflict(let current): throw Problem.illegalTransition("the session is already \(current.state.rawValue)", state: current.state.rawValue)
        case .notFound: throw Problem.missing("session")
        }
        try await context.audit.record(.sessionClose, by: caller, orgID: session.orgID, target: .session(session.id))
        await context.emit(DomainEvents.sessionStatus(closed))
        try await commands.cancelUnstarted(sessionID: session.id, by: caller, reason: "session closed")
        // A proposal that read the session while it was active may insert after this sweep:
        // sweep again once such a request has surely finished (they are bounded by the
        // request timeouts, far below these).
        let requestID = caller.requestID
        Task {
            for delay in [1, 5, 30] {
                try? await Task.sleep(for: .seconds(delay))
                try? await commands.cancelUnstarted(sessionID: session.id, by: Caller(actorType: .system, actorID: "session-close", requestID: requestID),
                                                    reason: "session closed")
            }
        }
        return closed
    }

    /// Ends a pending session as expired (the reaper, or an approval that came too late).
    /// False when someone else decided or expired it first.
    @discardableResult
    func expire(_ session: DiagnosticSession, now: Date) async throws(StoreError) -> Bool {
        guard case .updated(let expired) = try await context.records.updateSession(
            id: session.id, expected: [.pendingApproval], change: SessionChange(state: .expired, updatedAt: now)) else { return false }
        await context.audit.recordBestEffort(.sessionExpire, by: Caller(actorType: .system, actorID: "reaper"), orgID: session.orgID,
                                             target: .session(session.id), outcome: .success)
        await context.emit(DomainEvents.sessionStatus(expired))
        await context.emit(DomainEvents.approvalDecided(subject: "session", id: expired.id, sessionID: expired.id, deviceID: expired.deviceID,
                                                        orgID: expired.orgID, decision: "expired", decidedBy: nil))
        return true
    }

    static func checkedNote(_ note: String?) throws(Problem) -> String? {
        guard let note else { return nil }
        guard note.unicodeScalars.count <= maxNoteLength else { throw .invalid("note is longer than \(maxNoteLength) characters") }
        guard !note.unicodeScalars.contains(where: { $0.value == 0 }) else { throw .invalid("note must not contain NUL") }
        return note.isEmpty ? nil : note
    }
}
