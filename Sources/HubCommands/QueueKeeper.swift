import Foundation
import HubAuth
import HubStore

/// Keeps the hot queue whole: notices when it was lost and rebuilds it from the records before
/// this node claims from it again, and reconciles records the queue does not know.
///
/// - A built queue carries a marker key (`queue:ready:v2`). Redis flushed or restarted without
///   persistence, or an embedded hub restarted: the marker is gone. Every node checks it every
///   `guardInterval`; a node that finds it missing closes its gate (claims answer empty), and
///   one node (the holder of `queue:rebuild-lock`) enqueues every unfinished record (queued or
///   claimed) with its delivery count, then sets the marker. Enqueue is idempotent by id, so
///   commands accepted during the rebuild are neither lost nor doubled.
/// - A claimed record keeps its lease: it is enqueued claimed under the record's token and
///   deadline, so the device that holds it extends it and reports its result as before, and it
///   lapses (redelivery or dead letter) at its deadline like any other lease.
/// - `reconcile` enqueues queued or claimed records the queue does not know (an accepted
///   command whose enqueue failed, or whose node died between the record and the enqueue), and
///   brings records up to the queue's end (expired, dead-lettered, a result) when the node that
///   ended it died before writing the record.
public struct QueueKeeper: Sendable {
    let context: CommandContext
    let nodeID: String

    /// Versioned with the Redis key layout of the queue: `v2` is the bucketed, cluster-ready
    /// layout (`protocol/redis-keys.md`). A hub upgraded from the old layout finds no `v2`
    /// marker and rebuilds the queue from the records at once, instead of serving an empty
    /// queue until the next reconcile.
    static let markerKey = "queue:ready:v2"
    static let lockKey = "queue:rebuild-lock"
    static let lockTTL: Duration = .seconds(120)
    static let page = 500

    public init(context: CommandContext, nodeID: String) {
        self.context = context
        self.nodeID = nodeID
    }

    /// Opens the gate when the marker is present; otherwise closes it and rebuilds if this node
    /// wins the lock. Returns whether the gate is open afterwards.
    @discardableResult
    public func check() async throws -> Bool {
        if try await context.keyValue.get(Self.markerKey) != nil {
            context.gate.set(true)
            return true
        }
        if context.gate.isOpen {
            context.logger.warning("the hot queue's marker is missing; claims pause until it is rebuilt from the records")
        }
        context.gate.set(false)
        guard try await context.keyValue.setIfAbsent(Self.lockKey, Array(nodeID.utf8), ttl: Self.lockTTL) else {
            context.logger.debug("another node rebuilds the hot queue; waiting for its marker")
            return false
        }
        do {
            let count = try await rebuild()
            try await context.keyValue.set(Self.markerKey, Array(nodeID.utf8), ttl: nil)
            _ = try? await context.keyValue.delete([Self.lockKey])
            context.metrics.rebuilds.increment(shard: QueueMetrics.shard)
            context.logger.notice("hot queue rebuilt from the records", metadata: ["commands": .stringConvertible(count)])
            context.gate.set(true)
            return true
        } catch {
            _ = try? await context.keyValue.delete([Self.lockKey])
            throw error
        }
    }

    /// Enqueues every unfinished record; returns how many.
    func rebuild() async throws -> Int {
        var after: Int64 = 0
        var count = 0
        let recorder = TransitionRecorder(context: context)
        while true {
            let page = try await context.records.unfinishedCommands(afterSeq: after, limit: Self.page)
            for c in page {
                if c.state == .queued && c.attempts >= c.maxAttempts {
                    // Cannot be delivered again (a lost dead-letter transition): finish it.
                    await recorder.record(QueueTransition(queue: CommandContext.queueName(c.deviceID), id: c.id, state: .deadLettered, attempts: c.attempts))
                } else {
                    try await enqueue(c)
                    count += 1
                }
            }
            guard page.count == Self.page, let last = page.last else { return count }
            after = last.seq
        }
    }

    /// Enqueues unfinished records the queue does not know; returns how many.
    @discardableResult
    public func reconcile() async throws -> Int {
        guard context.gate.isOpen else { return 0 }
        var after: Int64 = 0
        var repaired = 0
        let recorder = TransitionRecorder(context: context)
        while true {
            let page = try await context.records.unfinishedCommands(afterSeq: after, limit: Self.page)
            for c in page where c.state == .claimed || c.attempts < c.maxAttempts {
                let queueName = CommandContext.queueName(c.deviceID)
                guard let status = try await context.queue.status(queueName, id: c.id) else {
                    try await enqueue(c)
                    repaired += 1
                    context.metrics.enqueueRepairs.increment(shard: QueueMetrics.shard)
                    await context.wakeups.commandAvailable(deviceID: c.deviceID)
                    continue
                }
                // The queue ended it but the record did not follow (the node that swept or
                // completed it died before its record write): the record catches up.
                switch status.state {
                case .expired, .deadLettered:
                    await recorder.record(QueueTransition(queue: queueName, id: c.id, state: status.state, attempts: status.attempts))
                    repaired += 1
                case .succeeded, .failed:
                    if let outcome = status.outcome, try await recorder.recordOutcome(c, outcome) { repaired += 1 }
                default:
                    break
                }
            }
            guard page.count == Self.page, let last = page.last else { return repaired }
            after = last.seq
        }
    }

    private func enqueue(_ c: CommandRecord) async throws {
        _ = try await context.queue.enqueue(CommandContext.queueName(c.deviceID), CommandContext.message(for: c), now: .now())
    }
}
