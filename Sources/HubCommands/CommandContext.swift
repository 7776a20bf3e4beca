import Foundation
import HubAuth
import HubStore
import Logging

/// What the session, command and lease services share: the stores, where signals go, the
/// settings, metrics, and the gate that says whether the hot queue may be claimed from.
public struct CommandContext: Sendable {
    public let records: any RecordStore
    public let queue: any LeaseQueue
    public let keyValue: any KeyValueStore
    public let events: any RoomEventSink
    public let wakeups: any DeviceWakeups
    public let audit: AuditLog
    public let configuration: CommandsConfiguration
    public let metrics: QueueMetrics
    public let gate: QueueGate
    public let logger: Logger

    public init(stores: Stores, events: any RoomEventSink, wakeups: any DeviceWakeups, configuration: CommandsConfiguration,
                metrics: QueueMetrics, gate: QueueGate, logger: Logger) {
        self.records = stores.records
        self.queue = stores.queue
        self.keyValue = stores.keyValue
        self.events = events
        self.wakeups = wakeups
        self.audit = AuditLog(records: stores.records, logger: logger)
        self.configuration = configuration
        self.metrics = metrics
        self.gate = gate
        self.logger = logger
    }

    /// The hot queue of one device.
    static func queueName(_ deviceID: UUID) -> String { deviceID.lowercasedString }

    /// Puts an accepted (queued) command into the hot queue and wakes its device. A failure is
    /// not the caller's: the record is written (the command is accepted), so it is logged and
    /// left to the reconciler, which enqueues every queued record the queue does not know.
    func enqueueAndWake(_ c: CommandRecord) async {
        do {
            _ = try await queue.enqueue(Self.queueName(c.deviceID), Self.message(for: c), now: .now())
        } catch {
            logger.warning("enqueue failed; the reconciler will enqueue the command", metadata: [
                "command_id": .string(c.id.lowercasedString), "error": .string(error.description),
            ])
            return
        }
        await wakeups.commandAvailable(deviceID: c.deviceID)
    }

    /// The hot-queue message of an unfinished record. A claimed record keeps its delivery: the
    /// message starts claimed under the record's lease, so the device holding it can extend it
    /// and report its result, and it lapses at its deadline like any other.
    static func message(for c: CommandRecord) -> QueueMessage {
        var lease: QueueMessage.Lease?
        var attempts = min(c.attempts, c.maxAttempts - 1)
        if c.state == .claimed, let token = c.leaseToken, let deadline = c.leaseExpiresAt, c.attempts >= 1 {
            lease = QueueMessage.Lease(token: token, deadline: deadline.storeMillis, leasedAt: (c.leasedAt ?? deadline).storeMillis)
            attempts = min(c.attempts, c.maxAttempts)
        }
        return QueueMessage(id: c.id, priority: c.priority, payload: Delivery.payload(kind: c.kind, arguments: c.arguments),
                            visibilityTimeout: .seconds(c.visibilityTimeoutSeconds), maxAttempts: c.maxAttempts,
                            expiresAt: c.expiresAt.storeMillis, attempts: attempts, lease: lease)
    }

    /// Applies `change` to a command that is in one of `from`, and appends the event `event(s)`
    /// names for the state `s` it left, in one conditional write. The first candidate is tried
    /// first; when the record is in another candidate state, that one is tried next (a few
    /// times at most), so the event's `fromState` is always the state the update replaced (the
    /// history chains).
    func update(_ id: UUID, from candidates: [CommandState], attemptsAtMost: Int? = nil, leaseToken: UUID? = nil,
                change: CommandChange, event: (CommandState) -> CommandEvent?) async throws(StoreError) -> RecordUpdate<CommandRecord> {
        guard var next = candidates.first else { return .notFound }
        // Bounded: another writer may move the record between two tries (a release's write
        // landing while a claim records), so a state may come round again.
        for _ in 0..<4 {
            let result = try await records.updateCommand(
                id: id, where: CommandCondition(states: [next], attemptsAtMost: attemptsAtMost, leaseToken: leaseToken),
                change: change, event: event(next))
            // Done, missing, or refused for another reason than its state (attempts, lease).
            guard case .conflict(let current) = result, candidates.contains(current.state), current.state != next else { return result }
            next = current.state
        }
        return try await records.command(id: id).map { .conflict(current: $0) } ?? .notFound
    }

    func emit(_ event: RoomEvent) async { await events.emit(event) }
}
