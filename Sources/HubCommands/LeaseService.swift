import Foundation
import HubAuth
import HubHTTP
import HubStore

/// The device side of the queue: claim, extend, release, progress, result (protocol/queue).
///
/// The hot queue decides who holds a delivery (atomic claim, lease tokens, idempotent
/// results); the record decides what the command is. So a claim records the delivery before
/// handing it out, and a lease whose record already ended (canceled meanwhile) is dropped, not
/// delivered; a result is accepted by the queue first and then recorded, the record update
/// allowing only an unfinished command, so at most one result is ever recorded.
public struct LeaseService: Sendable {
    let context: CommandContext
    let recorder: TransitionRecorder

    public init(context: CommandContext) {
        self.context = context
        self.recorder = TransitionRecorder(context: context)
    }

    public static let maxClaimBatch = 100
    public static let maxOutputCharacters = 65_536
    public static let maxProgressStatusBytes = 2048

    /// Leases up to `max` commands of the device (none while the queue is being rebuilt).
    public func claim(deviceID: UUID, max: Int) async throws -> [Delivery] {
        guard (1...Self.maxClaimBatch).contains(max) else { throw Problem.invalid("max must be 1...\(Self.maxClaimBatch)") }
        guard context.gate.isOpen else { return [] }
        let started = DispatchTime.now().uptimeNanoseconds
        let queueName = CommandContext.queueName(deviceID)
        let now = StoreMillis.now()
        let claim = try await context.queue.claim(queueName, max: max, now: now)
        await recorder.record(claim.transitions)
        var out: [Delivery] = []
        out.reserveCapacity(claim.leases.count)
        let at = Date(storeMillis: now)
        deliveries: for (index, lease) in claim.leases.enumerated() {
            let change = CommandChange(state: .claimed, attempts: lease.attempts,
                                       lease: .set(token: lease.token, expiresAt: Date(storeMillis: lease.deadline), leasedAt: at), updatedAt: at)
            // From `claimed`: the previous delivery's lease lapsed in the queue and this claim
            // records before the lapse was (the lapse's own write then finds a newer delivery
            // and records nothing); the event says so.
            let update: RecordUpdate<CommandRecord>
            do {
                update = try await context.update(lease.id, from: [.queued, .claimed], attemptsAtMost: lease.attempts - 1, change: change) { previous in
                    var detail: [(String, String)] = [("attempt", String(lease.attempts))]
                    if previous == .claimed { detail.append(("previous_lease", "\"lapsed\"")) }
                    return CommandEvent(commandID: lease.id, event: "claimed", fromState: previous, toState: .claimed, actor: "device",
                                        detail: WireText.object(detail), at: at)
                }
            } catch {
                // The record could not be written (the store is away or its queue is full): give
                // this delivery and the ones not handed out yet back at once — otherwise they
                // would sit leased, claimable by nobody, until their leases lapse. Deliveries
                // already recorded go out; with none, the device hears the error.
                for rest in claim.leases[index...] {
                    _ = try? await context.queue.release(queueName, id: rest.id, token: rest.token, delay: .zero, now: now)
                }
                if out.isEmpty { throw error }
                break deliveries
            }
            switch update {
            case .updated(let c):
                await context.emit(DomainEvents.commandStatus(c))
            case .conflict(let current) where current.state.isTerminal:
                // The record ended it (canceled while the claim ran): the record decides.
                _ = try? await context.queue.cancel(queueName, id: lease.id, now: now)
                continue
            case .conflict(let current) where current.state == .claimed && current.attempts >= lease.attempts:
                // The record already counts this delivery: the lease is the queue's current
                // one, so it is handed out.
                break
            case .conflict(let current):
                // The record moved on in a way this delivery cannot be written over: give the
                // delivery back rather than hand out one the record does not know.
                context.logger.warning("claim not recorded; delivery given back", metadata: [
                    "command_id": .string(lease.id.lowercasedString), "record_state": .string(current.state.rawValue),
                    "record_attempts": .stringConvertible(current.attempts), "attempt": .stringConvertible(lease.attempts),
                ])
                _ = try? await context.queue.release(queueName, id: lease.id, token: lease.token, delay: .zero, now: now)
                continue
            case .notFound:
                _ = try? await context.queue.cancel(queueName, id: lease.id, now: now)
                continue
            }
            if lease.attempts > 1 { context.metrics.redeliveries.increment(shard: QueueMetrics.shard) }
            out.append(Delivery(id: lease.id, payload: lease.payload, priority: lease.priority, leaseToken: lease.token,
                                leaseExpiresAt: lease.deadline, attempt: lease.attempts))
        }
        if !out.isEmpty {
            context.metrics.claims.increment(by: out.count, shard: QueueMetrics.shard)
            context.metrics.claimLatency.observe(nanoseconds: Int(DispatchTime.now().uptimeNanoseconds &- started), shard: QueueMetrics.shard)
        }
        return out
    }

    /// Moves the lease's deadline to now + `seconds` (capped at 12 h after the claim).
    public func extend(deviceID: UUID, commandID: UUID, token: UUID, seconds: Int) async throws -> LeaseState {
        guard (1...43_200).contains(seconds) else { throw Problem.invalid("seconds must be 1...43200") }
        let answer = try await context.queue.extend(CommandContext.queueName(deviceID), id: commandID, token: token, by: .seconds(seconds), now: .now())
        let status = try await settled(answer, deviceID: deviceID, commandID: commandID, token: token)
        if let deadline = status.leaseDeadline {
            // The queue enforces the deadline; the record keeps it so that a queue rebuilt from
            // the records carries the extended lease over (and customers see it).
            try await recordDeadline(commandID, token: token, deadline: deadline)
        }
        return LeaseState(id: commandID, state: status.state.rawValue, leaseExpiresAt: status.leaseDeadline)
    }

    /// Gives the delivery back: in line again after `delaySeconds` (dead-lettered when it was
    /// the last attempt). It counted as a delivery.
    public func release(deviceID: UUID, commandID: UUID, token: UUID, delaySeconds: Int) async throws -> LeaseState {
        guard (0...43_200).contains(delaySeconds) else { throw Problem.invalid("delay_seconds must be 0...43200") }
        let now = StoreMillis.now()
        let answer = try await context.queue.release(CommandContext.queueName(deviceID), id: commandID, token: token,
                                                     delay: .seconds(delaySeconds), now: now)
        let status = try await settled(answer, deviceID: deviceID, commandID: commandID, token: token)
        let at = Date(storeMillis: now)
        let dead = status.state == .deadLettered
        let change = CommandChange(state: dead ? .deadLettered : .queued, lease: .clear, finishedAt: dead ? at : nil, updatedAt: at)
        let event = CommandEvent(commandID: commandID, event: dead ? "dead_lettered" : "released", fromState: .claimed, toState: change.state,
                                 actor: "device", detail: WireText.object([("delay_seconds", String(delaySeconds))]), at: at)
        if case .updated(let c) = try await context.records.updateCommand(
            id: commandID, where: CommandCondition(states: [.claimed], leaseToken: token), change: change, event: event) {
            if dead { context.metrics.deadLetters.increment(shard: QueueMetrics.shard) }
            await context.emit(DomainEvents.commandStatus(c))
        }
        return LeaseState(id: commandID, state: status.state.rawValue, leaseExpiresAt: nil)
    }

    /// Records a progress report (percent 0...100, a small status object) and fans it out;
    /// with `extendSeconds` it also extends the lease. Needs the current lease.
    public func progress(deviceID: UUID, commandID: UUID, token: UUID, percent: Int?, status: String?, extendSeconds: Int?) async throws -> LeaseState {
        if let percent, !(0...100).contains(percent) { throw Problem.invalid("percent must be 0...100") }
        if let status {
            guard status.utf8.count <= Self.maxProgressStatusBytes else { throw Problem.invalid("status is larger than \(Self.maxProgressStatusBytes) bytes") }
            guard status.utf8.first == UInt8(ascii: "{") else { throw Problem.invalid("status must be a JSON object") }
        }
        let queueName = CommandContext.queueName(deviceID)
        let current: QueueStatus
        if let extendSeconds {
            guard (1...43_200).contains(extendSeconds) else { throw Problem.invalid("extend_seconds must be 1...43200") }
            current = try await settled(try await context.queue.extend(queueName, id: commandID, token: token, by: .seconds(extendSeconds), now: .now()),
                                        deviceID: deviceID, commandID: commandID, token: token)
            if let deadline = current.leaseDeadline { try await recordDeadline(commandID, token: token, deadline: deadline) }
        } else {
            guard let s = try await context.queue.status(queueName, id: commandID) else {
                current = try await settled(.notFound, deviceID: deviceID, commandID: commandID, token: token)
                return LeaseState(id: commandID, state: current.state.rawValue, leaseExpiresAt: current.leaseDeadline)
            }
            guard s.state == .claimed, s.leaseToken == token, let deadline = s.leaseDeadline, deadline > .now() else {
                throw Problem.leaseConflict(state: s.state.rawValue)
            }
            current = s
        }
        var fields: [(String, String)] = []
        if let percent { fields.append(("percent", String(percent))) }
        if let status { fields.append(("status", status)) }
        _ = try await context.records.appendCommandEvent(CommandEvent(commandID: commandID, event: "progress", actor: "device",
                                                                      detail: WireText.object(fields), at: .storeNow()))
        if let record = try await context.records.command(id: commandID) {
            await context.emit(DomainEvents.commandProgress(record, percent: percent, status: status))
        }
        return LeaseState(id: commandID, state: current.state.rawValue, leaseExpiresAt: current.leaseDeadline)
    }

    /// The device's result: `succeeded` or `failed`, with exit code and output. The same lease
    /// and body again answer the same; anything stale is 409 with the command's state.
    public func result(deviceID: UUID, commandID: UUID, token: UUID, succeeded: Bool, exitCode: Int32?, output: String?) async throws -> LeaseState {
        if let output {
            guard output.unicodeScalars.count <= Self.maxOutputCharacters else { throw Problem.invalid("output is longer than \(Self.maxOutputCharacters) characters") }
            guard !output.unicodeScalars.contains(where: { $0.value == 0 }) else { throw Problem.invalid("output must not contain NUL") }
        }
        let status = succeeded ? CommandState.succeeded : .failed
        var fields: [(String, String)] = [("status", "\"" + status.rawValue + "\"")]
        if let exitCode { fields.append(("exit_code", String(exitCode))) }
        let resultJSON = WireText.object(fields)
        // The outcome the queue compares for idempotency: status, exit code and output.
        let outcome = QueueOutcome(succeeded: succeeded, result: ResultText.encode(resultJSON: resultJSON, output: output))
        let now = StoreMillis.now()
        let answer = try await context.queue.complete(CommandContext.queueName(deviceID), id: commandID, token: token, outcome: outcome, now: now)
        var candidates: [CommandState] = [.claimed, .queued]
        var leaseCondition: UUID?
        switch answer {
        case .ok, .alreadyDone:
            break
        case .conflict(let s):
            throw Problem.leaseConflict(state: try await recordedState(commandID, fallback: s.state.rawValue))
        case .notFound:
            // The queue lost it (flushed; being rebuilt): the record's lease is the evidence.
            // The record keeps the last lease's token after the result, so a repeat of an
            // accepted result is recognised here too.
            let record = try await owned(deviceID: deviceID, commandID: commandID)
            guard record.leaseToken == token else { throw Problem.leaseConflict(state: record.state.rawValue) }
            if record.state == status { return LeaseState(id: commandID, state: status.rawValue, leaseExpiresAt: nil) }
            guard record.state == .claimed else { throw Problem.leaseConflict(state: record.state.rawValue) }
            candidates = [.claimed]
            leaseCondition = token
        }
        let at = Date(storeMillis: now)
        // The lease stays on the record (token and deadline of the delivery that produced the
        // result): the evidence for a repeated result while the queue is being rebuilt.
        let change = CommandChange(state: status, exitCode: exitCode.map(Int.init), outputSummary: output, result: resultJSON,
                                   finishedAt: at, updatedAt: at)
        let update = try await context.update(commandID, from: candidates, leaseToken: leaseCondition, change: change) { previous in
            CommandEvent(commandID: commandID, event: "result", fromState: previous, toState: status, actor: "device", detail: resultJSON, at: at)
        }
        switch update {
        case .updated(let c):
            (succeeded ? context.metrics.succeeded : context.metrics.failed).increment(shard: QueueMetrics.shard)
            await context.emit(DomainEvents.commandStatus(c))
        case .conflict(let current):
            // Recorded before (a retried result whose first answer was lost), or the record
            // ended it otherwise (canceled): the record decides.
            guard current.state == status else {
                throw Problem.leaseConflict(state: current.state.rawValue)
            }
        case .notFound:
            throw Problem.missing("command")
        }
        return LeaseState(id: commandID, state: status.rawValue, leaseExpiresAt: nil)
    }

    /// Writes an extended deadline into the record, keeping the delivery's `leasedAt` (the 12 h
    /// cap counts from it).
    private func recordDeadline(_ commandID: UUID, token: UUID, deadline: StoreMillis) async throws {
        guard let record = try await context.records.command(id: commandID), record.state == .claimed, record.leaseToken == token else { return }
        let leasedAt = record.leasedAt ?? Date(storeMillis: deadline)
        _ = try await context.records.updateCommand(
            id: commandID, where: CommandCondition(states: [.claimed], leaseToken: token),
            change: CommandChange(lease: .set(token: token, expiresAt: Date(storeMillis: deadline), leasedAt: leasedAt)), event: nil)
    }

    /// The status after a lease operation, or the problem for the device: 404 for a command that
    /// is not its own, 409 with the state for a stale lease, 503 while the queue is rebuilt.
    private func settled(_ answer: QueueAnswer, deviceID: UUID, commandID: UUID, token: UUID) async throws -> QueueStatus {
        switch answer {
        case .ok(let s), .alreadyDone(let s):
            return s
        case .conflict(let s):
            throw Problem.leaseConflict(state: try await recordedState(commandID, fallback: s.state.rawValue))
        case .notFound:
            let record = try await owned(deviceID: deviceID, commandID: commandID)
            if record.state == .claimed, record.leaseToken == token { throw Problem.queueRebuilding }
            throw Problem.leaseConflict(state: record.state.rawValue)
        }
    }

    /// The state a conflict reports: the record's when it ended (it decides; the queue's may lag
    /// a cancel), `expired` when the TTL passed (the queue refuses then; the reaper records it
    /// next), else the queue's.
    private func recordedState(_ commandID: UUID, fallback: String) async throws -> String {
        guard let record = try? await context.records.command(id: commandID) else { return fallback }
        if record.state.isTerminal { return record.state.rawValue }
        return record.expiresAt <= Date() ? CommandState.expired.rawValue : fallback
    }

    /// The record of a command of this device, or 404 (another device's command looks missing).
    private func owned(deviceID: UUID, commandID: UUID) async throws -> CommandRecord {
        guard let record = try await context.records.command(id: commandID), record.deviceID == deviceID else { throw Problem.missing("command") }
        return record
    }
}
