import Foundation
import HubAuth
import HubStore

/// Writes the changes the hot queue made by itself (a lapsed lease back in line, a dead
/// letter, a TTL expiry) into the records, and announces each once.
///
/// The queue applies a transition atomically and reports it to exactly one caller (the claim
/// or sweep that made it), so one node records it. The record update is conditional so that a
/// late writer cannot undo a newer fact: a requeue of delivery n applies only to a claimed
/// record with at most n deliveries (a newer claim, already recorded, wins; it records that it
/// took over a lapsed lease), and nothing changes a terminal record. When the condition fails,
/// nothing is announced.
struct TransitionRecorder: Sendable {
    let context: CommandContext

    func record(_ transitions: [QueueTransition]) async {
        for t in transitions { await record(t) }
    }

    func record(_ t: QueueTransition) async {
        let now = Date.storeNow()
        let from: [CommandState]
        var attemptsAtMost: Int?
        let change: CommandChange
        let name: String
        switch t.state {
        case .queued:
            from = [.claimed]
            attemptsAtMost = t.attempts
            change = CommandChange(state: .queued, attempts: t.attempts, lease: .clear, updatedAt: now)
            name = "lease_lapsed"
        case .deadLettered:
            from = [.claimed, .queued]
            change = CommandChange(state: .deadLettered, attempts: t.attempts, lease: .clear, finishedAt: now, updatedAt: now)
            name = "dead_lettered"
        case .expired:
            from = [.claimed, .queued, .pendingApproval]
            change = CommandChange(state: .expired, lease: .clear, finishedAt: now, updatedAt: now)
            name = "expired"
        default:
            return
        }
        let detail = WireText.object([("attempts", String(t.attempts))])
        do {
            let update = try await context.update(t.id, from: from, attemptsAtMost: attemptsAtMost, change: change) { previous in
                CommandEvent(commandID: t.id, event: name, fromState: previous, toState: change.state, actor: "queue", detail: detail, at: now)
            }
            guard case .updated(let c) = update else { return }
            switch t.state {
            case .queued: context.metrics.leaseExpiries.increment(shard: QueueMetrics.shard)
            case .deadLettered: context.metrics.deadLetters.increment(shard: QueueMetrics.shard)
            default: break
            }
            await context.emit(DomainEvents.commandStatus(c))
        } catch {
            // The queue already moved on; the record catches up on the next delivery's write
            // (a claim records the state it hands out) or through the reconciler.
            context.logger.warning("queue transition not recorded", metadata: [
                "command_id": .string(t.id.lowercasedString), "state": .string(t.state.rawValue), "error": .string(error.description),
            ])
        }
    }

    /// Records a result the queue accepted but the record missed (its node died between the
    /// two writes): the outcome as `ResultText` keeps it.
    /// True when the record changed.
    func recordOutcome(_ c: CommandRecord, _ outcome: QueueOutcome) async throws -> Bool {
        let (resultJSON, output) = ResultText.decode(outcome.result)
        let exitCode = (try? JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any])?["exit_code"] as? Int
        let status: CommandState = outcome.succeeded ? .succeeded : .failed
        let at = Date.storeNow()
        let change = CommandChange(state: status, exitCode: exitCode, outputSummary: output.isEmpty ? nil : output,
                                   result: resultJSON.isEmpty ? nil : resultJSON, finishedAt: at, updatedAt: at)
        let update = try await context.update(c.id, from: [.claimed, .queued], change: change) { previous in
            CommandEvent(commandID: c.id, event: "result", fromState: previous, toState: status, actor: "reconciler", detail: resultJSON.isEmpty ? "{}" : resultJSON, at: at)
        }
        guard case .updated(let updated) = update else { return false }
        (outcome.succeeded ? context.metrics.succeeded : context.metrics.failed).increment(shard: QueueMetrics.shard)
        await context.emit(DomainEvents.commandStatus(updated))
        return true
    }
}
