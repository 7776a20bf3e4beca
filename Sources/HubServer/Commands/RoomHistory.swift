import Foundation
import HubCommands
import HubStore
import Logging
import Synchronization

/// The domain's room events into each room's bounded history (`room:<room>` streams), from
/// which subscribers read and resume.
///
/// Off the request path: `emit` only hands the event to one writer task per node, which
/// appends in the order events were emitted (so a room's history is in order) while the request
/// answers. Bounded: past `maxPending` waiting events the oldest waiting ones are dropped and
/// counted in the log — the records hold the truth, a lost event is a lost notification.
final class RoomHistory: RoomEventSink, @unchecked Sendable {
    // @unchecked: `continuation` is thread-safe (AsyncStream's), `writer` is written at init
    // and read by `finish()` only.
    private let continuation: AsyncStream<RoomEvent>.Continuation
    private var writer: Task<Void, Never>?
    private let dropped = Atomic<Int>(0)
    private let logger: Logger

    /// Newest entries a room keeps, and how long a quiet room lives.
    static let maxLength = 1000
    static let ttl: Duration = .seconds(24 * 3600)
    static let maxPending = 10_000

    static func stream(_ room: String) -> String { "room:" + room }

    init(streams: any StreamStore, logger: Logger) {
        let (stream, continuation) = AsyncStream<RoomEvent>.makeStream(bufferingPolicy: .bufferingNewest(Self.maxPending))
        self.continuation = continuation
        self.logger = logger
        writer = Task {
            for await event in stream {
                let payload = Array(("{\"event\":\"" + event.name + "\",\"data\":" + event.data + ",\"at\":\"" + (WireTime.format(Date()) ?? "") + "\"}").utf8)
                for room in event.rooms {
                    do {
                        _ = try await streams.append(Self.stream(room), payload, maxLength: Self.maxLength, ttl: Self.ttl)
                    } catch {
                        logger.warning("room event not kept", metadata: ["room": .string(room), "event": .string(event.name), "error": .string("\(error)")])
                    }
                }
            }
        }
    }

    func emit(_ event: RoomEvent) async {
        if case .dropped = continuation.yield(event) {
            // The writer is behind by `maxPending` events (the store is slow or away).
            let n = dropped.add(1, ordering: .relaxed).newValue
            if n == 1 || n % 1000 == 0 { logger.warning("room events dropped: the history writer is behind", metadata: ["dropped": .stringConvertible(n)]) }
        }
    }

    /// Stops taking events and waits (bounded by the caller) for the writer to append the rest.
    func finish() async {
        continuation.finish()
        await writer?.value
    }
}
