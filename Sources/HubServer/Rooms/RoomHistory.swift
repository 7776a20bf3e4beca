import Foundation
import HubCommands
import HubIO
import HubStore
import Logging
import Synchronization

/// The domain's room events into each room's bounded history (`room:<room>` streams), then
/// onto the room's channel for the nodes with subscribers there (`RoomRelay`).
///
/// Off the request path: `emit` hands the event to a writer lane, which appends and then
/// publishes while the request answers. A room always maps to the same lane, so its events
/// are appended in the order they were emitted on this node; lanes run side by side, so one
/// slow room does not hold up the others. Bounded: past `maxPending` waiting events per lane
/// the oldest waiting ones are dropped and counted — the records hold the truth, a lost event
/// is a lost notification (and a subscriber's next resume sees the gap as `recovered: false`
/// only if the history itself lost entries; a dropped event never got an offset).
final class RoomHistory: RoomEventSink, @unchecked Sendable {
    // @unchecked: the continuations are thread-safe (AsyncStream's); `writers` is written at
    // init and read by `finish()` only.
    private let lanes: [AsyncStream<Item>.Continuation]
    private var writers: [Task<Void, Never>] = []
    private let dropped = Atomic<Int>(0)
    private let logger: Logger
    private let metrics: RoomMetrics

    struct Item: Sendable {
        let room: String
        let stored: [UInt8]
    }

    static let maxPending = 10_000

    static func stream(_ room: String) -> String { "room:" + room }

    /// Lanes are spread over `loops` and run on them: the stores answer on the loops, so an
    /// append or publish resumes its lane without a thread hop (on the global executor each
    /// reply cost a futex wake-up).
    init(streams: any StreamStore, pubSub: any PubSub, maxLength: Int, ttl: Duration, lanes count: Int, loops: [EventLoop],
         metrics: RoomMetrics, logger: Logger) {
        self.logger = logger
        self.metrics = metrics
        var lanes: [AsyncStream<Item>.Continuation] = []
        for index in 0..<max(1, count) {
            let (stream, continuation) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingNewest(Self.maxPending))
            lanes.append(continuation)
            writers.append(Task(executorPreference: loops[index % loops.count]) {
                for await item in stream {
                    do {
                        let position = try await streams.append(Self.stream(item.room), item.stored, maxLength: maxLength, ttl: ttl)
                        let message = RoomFrame.published(room: item.room, offset: position.offset, epoch: position.epoch, stored: item.stored)
                        try await pubSub.publish(RoomRelay.channel(item.room), message)
                        metrics.appended.increment(shard: nil)
                    } catch {
                        // Not kept: no offset was given out, or the live copy was lost (then a
                        // subscriber's relay finds it in the stream at the next event's gap).
                        metrics.appendFailures.increment(shard: nil)
                        logger.warning("room event not kept or not published", metadata: ["room": .string(item.room), "error": .string("\(error)")])
                    }
                }
            })
        }
        self.lanes = lanes
    }

    /// The stored form: `{"event":…,"data":…,"at":…}` (see `RoomFrame`).
    static func stored(_ event: RoomEvent) -> [UInt8] {
        Array(("{\"event\":\"" + event.name + "\",\"data\":" + event.data + ",\"at\":\"" + (WireTime.format(Date()) ?? "") + "\"}").utf8)
    }

    private func lane(_ room: String) -> AsyncStream<Item>.Continuation {
        lanes[RoomName.spread(room, over: lanes.count)]
    }

    func emit(_ event: RoomEvent) async {
        let stored = Self.stored(event)
        for room in event.rooms {
            if case .dropped = lane(room).yield(Item(room: room, stored: stored)) {
                // A lane is behind by `maxPending` events (the store is slow or away).
                metrics.appendFailures.increment(shard: nil)
                let n = dropped.add(1, ordering: .relaxed).newValue
                if n == 1 || n % 1000 == 0 { logger.warning("room events dropped: the history writer is behind", metadata: ["dropped": .stringConvertible(n)]) }
            }
        }
    }

    /// Stops taking events and waits (bounded by the caller) for the writers to finish the rest.
    func finish() async {
        for lane in lanes { lane.finish() }
        for writer in writers { await writer.value }
    }
}
