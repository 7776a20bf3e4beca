import Foundation
import HubAuth
import HubStore

/// One pass of the reaper, which every node runs periodically: the hot queue's due transitions
/// across all devices (lapsed leases back in line, dead letters, TTL expiries), then pending
/// sessions and commands whose approval deadline or TTL passed. Several nodes may run it at the
/// same moment: the queue hands each transition to one sweeper, and the record updates are
/// conditional, so each transition is recorded and announced once.
public struct QueueReaper: Sendable {
    let context: CommandContext
    let recorder: TransitionRecorder
    let sessions: SessionService
    let commands: CommandService

    /// Transitions and expiries one pass handles at most (the next pass continues).
    static let batch = 100
    static let maxBatchesPerPass = 20

    public init(context: CommandContext) {
        self.context = context
        self.recorder = TransitionRecorder(context: context)
        self.sessions = SessionService(context: context)
        self.commands = CommandService(context: context)
    }

    /// Returns how many transitions and expiries it applied.
    @discardableResult
    public func runOnce() async throws -> Int {
        var applied = 0
        if context.gate.isOpen {
            for _ in 0..<Self.maxBatchesPerPass {
                let transitions = try await context.queue.sweep(now: .now(), limit: Self.batch)
                await recorder.record(transitions)
                applied += transitions.count
                if transitions.count < Self.batch { break }
            }
        }
        let now = Date.storeNow()
        for s in try await context.records.expiredPendingSessions(now: now, limit: Self.batch) where try await sessions.expire(s, now: now) {
            applied += 1
        }
        for c in try await context.records.expiredPendingCommands(now: now, limit: Self.batch) where try await commands.expirePending(c, now: now) {
            applied += 1
        }
        return applied
    }
}
