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

    /// The hot-queue message of a queued record (attempts: deliveries already made).
    static func message(for c: CommandRecord) -> QueueMessage {
        QueueMessage(id: c.id, priority: c.priority, payload: Delivery.payload(kind: c.kind, arguments: c.arguments),
                     visibilityTimeout: .seconds(c.visibilityTimeoutSeconds), maxAttempts: c.maxAttempts,
                     expiresAt: c.expiresAt.storeMillis, attempts: min(c.attempts, c.maxAttempts - 1))
    }

    func emit(_ event: RoomEvent) async { await events.emit(event) }
}
