import Foundation
import HubAuth
import HubHTTP
import HubStore

/// Commands as customers see them: propose into an active session, approve, reject, cancel.
///
/// The order of writes (docs/queue.md): the record first — a 201 means the command is in the
/// durable store — then the hot queue, then the wake-up. A crash between the two leaves a queued
/// record the queue does not know; the reconciler (and a rebuild) enqueue it. The record decides
/// every state: the queue only decides who holds a lease.
public struct CommandService: Sendable {
    let context: CommandContext

    public init(context: CommandContext) {
        self.context = context
    }

    /// The command, or 404.
    public func command(id: UUID) async throws -> CommandRecord {
        guard let c = try await context.records.command(id: id) else { throw Problem.missing("command") }
        return c
    }

    /// Proposes a command into `session` (which must be active). Kinds in the org's
    /// `autoApprovedKinds` are queued at once; the rest wait for their own approval. With an
    /// idempotency key seen in this session within the window, the first command is returned
    /// (`replayed`). A device with `deviceQueueCap` unfinished commands is 429 `queue_full`.
    public func propose(_ proposal: Proposal, in session: DiagnosticSession, org: Org, by caller: Caller) async throws -> (command: CommandRecord, replayed: Bool) {
        try proposal.validate()
        guard session.state == .active else {
            throw Problem.illegalTransition("commands are proposed into an active session; this one is \(session.state.rawValue)", state: session.state.rawValue)
        }
        if let key = proposal.idempotencyKey, let first = try await context.records.command(sessionID: session.id, idempotencyKey: key) {
            return (try replay(first, key: key), true)
        }
        let cap = context.configuration.deviceQueueCap
        if try await context.records.unfinishedCommandCount(deviceID: session.deviceID) >= cap { throw Problem.queueFull(cap: cap) }

        let needsApproval = !org.autoApprovedKinds.contains(proposal.kind)
        let now = Date.storeNow()
        let proposer = caller.actorID ?? "unknown"
        let draft = CommandRecord(orgID: session.orgID, sessionID: session.id, deviceID: session.deviceID, kind: proposal.kind,
                                  arguments: proposal.arguments, priority: proposal.priority,
                                  state: needsApproval ? .pendingApproval : .queued, needsApproval: needsApproval, proposedBy: proposer,
                                  ttlSeconds: proposal.ttlSeconds, expiresAt: now.addingTimeInterval(Double(proposal.ttlSeconds)),
                                  maxAttempts: proposal.maxAttempts, visibilityTimeoutSeconds: proposal.visibilityTimeoutSeconds,
                                  createdAt: now, idempotencyKey: proposal.idempotencyKey)
        let command: CommandRecord
        do {
            command = try await context.records.insertCommand(draft, event: CommandEvent(
                commandID: draft.id, event: "proposed", toState: draft.state, actor: proposer, at: now))
        } catch {
            // Two proposals with one key at once: the unique index let one in; answer with it.
            if (error as? StoreError)?.isConflict == true, let key = proposal.idempotencyKey,
               let first = try await context.records.command(sessionID: session.id, idempotencyKey: key) {
                return (try replay(first, key: key), true)
            }
            throw error
        }
        // A close racing this proposal (the session read active, the close swept before this
        // insert) is caught by the close's later sweeps (`SessionService.close`), not by a
        // second read of the session on every proposal.
        await context.emit(DomainEvents.commandStatus(command))
        if needsApproval {
            await context.emit(DomainEvents.commandApprovalRequested(command))
        } else {
            await context.enqueueAndWake(command)
        }
        return (command, false)
    }

    private func replay(_ first: CommandRecord, key: String) throws -> CommandRecord {
        let age = Date().timeIntervalSince(first.createdAt)
        guard age < Double(context.configuration.idempotencyWindow.components.seconds) else {
            throw Problem.conflict("idempotency_key \"\(key)\" was used in this session more than 24 h ago")
        }
        return first
    }

    /// An approver's yes for a command that needs its own approval: pending → queued, then
    /// enqueued and its device woken. Four eyes against the proposer; the session must still
    /// be active; a command past its TTL ends as expired (409).
    public func approve(_ command: CommandRecord, org: Org, note: String?, by caller: Caller) async throws -> CommandRecord {
        try await decide(command, org: org, note: note, by: caller, approve: true)
    }

    /// An approver's no: pending → rejected.
    public func reject(_ command: CommandRecord, org: Org, note: String?, by caller: Caller) async throws -> CommandRecord {
        try await decide(command, org: org, note: note, by: caller, approve: false)
    }

    private func decide(_ command: CommandRecord, org: Org, note: String?, by caller: Caller, approve: Bool) async throws -> CommandRecord {
        guard let approver = caller.userID else { throw Problem.forbidden("approvals are made by people: sign in as a user") }
        let note = try SessionService.checkedNote(note)
        guard command.state == .pendingApproval else {
            throw Problem.illegalTransition("the command is \(command.state.rawValue), not pending_approval", state: command.state.rawValue)
        }
        let now = Date.storeNow()
        if command.expiresAt <= now {
            _ = try await expirePending(command, now: now)
            throw Problem.illegalTransition("the command's TTL passed", state: CommandState.expired.rawValue)
        }
        if approve && org.requireDistinctApprover && command.proposedBy == approver.lowercasedString { throw Problem.fourEyes("command") }
        // The session needs no second look: a pending command exists only in an active session
        // (proposals need one) until a close cancels it, and the update below is conditional
        // on the command still pending.
        let target: CommandState = approve ? .queued : .rejected
        var detail = "{}"
        if let note { detail = WireText.object([("note", WireText.quoted(note))]) }
        let change = CommandChange(state: target, decidedBy: approver, decidedAt: now, finishedAt: approve ? nil : now, updatedAt: now)
        let event = CommandEvent(commandID: command.id, event: approve ? "approved" : "rejected", fromState: .pendingApproval,
                                 toState: target, actor: caller.actorID, detail: detail, at: now)
        let decided: CommandRecord
        switch try await context.records.updateCommand(id: command.id, where: CommandCondition(states: [.pendingApproval]), change: change, event: event) {
        case .updated(let c): decided = c
        case .conflict(let current): throw Problem.illegalTransition("the command is \(current.state.rawValue), not pending_approval", state: current.state.rawValue)
        case .notFound: throw Problem.missing("command")
        }
        context.metrics.approvalWait.observe(nanoseconds: Int(max(0, now.timeIntervalSince(command.createdAt)) * 1e9), shard: QueueMetrics.shard)
        // The device first (the approval's latency is what a person waits for), then the audit
        // entry, whose failure still fails the request (the change stands either way).
        if approve { await context.enqueueAndWake(decided) }
        try await context.audit.record(approve ? .commandApprove : .commandReject, by: caller, orgID: command.orgID, target: .command(command.id))
        await context.emit(DomainEvents.commandStatus(decided))
        await context.emit(DomainEvents.approvalDecided(subject: "command", id: decided.id, sessionID: decided.sessionID, deviceID: decided.deviceID,
                                                        orgID: decided.orgID, decision: approve ? "approved" : "rejected", decidedBy: approver))
        return decided
    }

    /// pending_approval, queued or claimed → canceled. The record first, then the queue (an
    /// outstanding lease becomes stale: the device's later result gets 409 `canceled`), then a
    /// `command.cancel` to the device so it stops the process.
    public func cancel(_ command: CommandRecord, by caller: Caller, note: String? = nil) async throws -> CommandRecord {
        let now = Date.storeNow()
        let detail = note.map { WireText.object([("note", WireText.quoted($0))]) } ?? "{}"
        let change = CommandChange(state: .canceled, lease: .clear, finishedAt: now, updatedAt: now)
        let unfinished: [CommandState] = [.pendingApproval, .queued, .claimed]
        let from = (command.state.isTerminal ? [] : [command.state]) + unfinished.filter { $0 != command.state }
        let update = try await context.update(command.id, from: from, change: change) { previous in
            CommandEvent(commandID: command.id, event: "canceled", fromState: previous, toState: .canceled, actor: caller.actorID, detail: detail, at: now)
        }
        let canceled: CommandRecord
        switch update {
        case .updated(let c): canceled = c
        case .conflict(let current): throw Problem.illegalTransition("the command already ended as \(current.state.rawValue)", state: current.state.rawValue)
        case .notFound: throw Problem.missing("command")
        }
        if caller.actorType != .system {
            try await context.audit.record(.commandCancel, by: caller, orgID: command.orgID, target: .command(command.id))
        }
        // Whatever the record said before (its claim may lag the queue's), the queue is told,
        // and a device that may hold a lease is asked to stop.
        _ = try? await context.queue.cancel(CommandContext.queueName(command.deviceID), id: command.id, now: now.storeMillis)
        await context.emit(DomainEvents.commandStatus(canceled))
        if command.state != .pendingApproval {
            await context.wakeups.commandCanceled(deviceID: command.deviceID, commandID: command.id)
        }
        return canceled
    }

    /// Cancels the session's commands that have not started (closing a session).
    func cancelUnstarted(sessionID: UUID, by caller: Caller, reason: String) async throws {
        var after: Int64 = 0
        while true {
            let page = try await context.records.commands(sessionID: sessionID, states: [.pendingApproval, .queued], afterSeq: after, limit: 200)
            for c in page {
                do {
                    _ = try await cancel(c, by: Caller(actorType: .system, actorID: "session-close", requestID: caller.requestID), note: reason)
                } catch let problem as Problem where problem.status == 409 {
                    continue  // it started or ended meanwhile
                }
            }
            guard page.count == 200, let last = page.last else { return }
            after = last.seq
        }
    }

    /// A session's commands in `states` (nil: all) by seq, after the cursor.
    public func list(sessionID: UUID, states: Set<CommandState>?, afterSeq: Int64, limit: Int) async throws -> [CommandRecord] {
        try await context.records.commands(sessionID: sessionID, states: states, afterSeq: afterSeq, limit: limit)
    }

    /// Ends a pending command whose TTL passed as expired. False when it was decided first.
    @discardableResult
    func expirePending(_ command: CommandRecord, now: Date) async throws(StoreError) -> Bool {
        let change = CommandChange(state: .expired, finishedAt: now, updatedAt: now)
        let event = CommandEvent(commandID: command.id, event: "expired", fromState: .pendingApproval, toState: .expired, actor: "reaper", at: now)
        guard case .updated(let expired) = try await context.records.updateCommand(
            id: command.id, where: CommandCondition(states: [.pendingApproval]), change: change, event: event) else { return false }
        await context.emit(DomainEvents.commandStatus(expired))
        await context.emit(DomainEvents.approvalDecided(subject: "command", id: expired.id, sessionID: expired.sessionID, deviceID: expired.deviceID,
                                                        orgID: expired.orgID, decision: "expired", decidedBy: nil))
        return true
    }
}

extension StoreError {
    /// A duplicate unique value. (Matched through this property: a `catch .conflict` pattern
    /// crashes Swift 6.3.1's SIL ownership verifier.)
    var isConflict: Bool {
        if case .conflict = self { return true }
        return false
    }
}
