import HubIO
import HubStore
import HubTelemetry
import HubWebSocketIO
import Logging

/// Rooms as a service of the hub (after the stores, before the command queue that emits into
/// them): each room's history and channel (`RoomHistory`), the node's relay of the rooms it has
/// subscribers in (`RoomRelay`), and each loop's membership table (`RoomTable`).
final class RoomsLayer: HubService, @unchecked Sendable {
    // @unchecked: `relay` and `history` are written once in `start()`, before the listeners
    // bind (no socket exists yet), and only read afterwards; `tables` are each loop's own.
    let name = "rooms"
    let loops: [EventLoop]
    let tables: [RoomTable]
    let metrics: RoomMetrics
    let settings: RoomSettings
    private let dataStores: DataStores
    private let logger: Logger
    private(set) var relay: RoomRelay?
    private(set) var history: RoomHistory?

    init(settings: RoomSettings, loops: [EventLoop], dataStores: DataStores, registry: MetricsRegistry, logger: Logger) {
        self.settings = settings
        self.loops = loops
        self.dataStores = dataStores
        self.logger = logger
        let metrics = RoomMetrics(registry: registry)
        self.metrics = metrics
        tables = loops.map { RoomTable(loop: $0, metrics: metrics) }
    }

    func start() async throws {
        guard let stores = dataStores.stores else { throw ConfigError(message: "rooms: the stores did not start") }
        let relay = RoomRelay(loops: loops, tables: tables, pubSub: stores.pubSub, streams: stores.streams, historyTTL: settings.historyTTL, logger: logger)
        for table in tables { table.relay = relay }
        self.relay = relay
        history = RoomHistory(streams: stores.streams, pubSub: stores.pubSub, maxLength: settings.historyLength, ttl: settings.historyTTL,
                              lanes: 4 * loops.count, loops: loops, metrics: metrics, logger: logger)
    }

    func stop() async {
        await history?.finish()
    }

    /// A subscriber for a connection on `loop` (nil before the layer started).
    func subscriber(for ws: WebSocketConnection, loop: EventLoop) -> RoomSubscriber? {
        guard relay != nil else { return nil }
        return RoomSubscriber(ws: ws, table: tables[loop.index], softLimit: settings.subscriberSoftLimit,
                              hardLimit: settings.subscriberHardLimit, metrics: metrics)
    }

    /// What a subscriber that joins `room` now gets: the stream's epoch and offset, and with
    /// `since`, the events after it — all of them, or none with `recovered: false`.
    func resume(_ room: String, since: RoomResume.Since?) async throws(StoreError) -> RoomSubscriber.Joined {
        guard let streams = dataStores.stores?.streams else { throw .unavailable("stores not started") }
        let stream = RoomHistory.stream(room)
        guard let since else {
            let position = try await streams.open(stream, ttl: settings.historyTTL)
            return RoomSubscriber.Joined(epoch: position.epoch, offset: position.offset, recovered: false, replay: [])
        }
        var pages: [StreamRead] = []
        var after = since.offset
        var epoch: String?
        while pages.count * StoreLimits.maxBatch < settings.historyLength + StoreLimits.maxBatch {
            let page = try await streams.read(stream, after: after, limit: StoreLimits.maxBatch)
            if epoch == nil { epoch = page.epoch }
            pages.append(page)
            guard page.epoch == epoch, page.recovered, let last = page.entries.last, last.offset < page.latestOffset else { break }
            after = last.offset
        }
        let current: StreamPosition
        if let epoch {
            current = StreamPosition(offset: pages.last?.latestOffset ?? 0, epoch: epoch)
        } else {
            // No stream (never written, or lost): start its epoch so the next resume can tell.
            current = try await streams.open(stream, ttl: settings.historyTTL)
        }
        let plan = RoomResume.plan(since: since, pages: pages, current: current)
        let replay = plan.replay.map { RoomFrame(room: room, offset: $0.offset, epoch: current.epoch, stored: $0.payload) }
        return RoomSubscriber.Joined(epoch: current.epoch, offset: plan.offset, recovered: plan.recovered, replay: replay)
    }
}

/// Limits and retention of rooms, from the configuration.
struct RoomSettings: Sendable {
    /// Newest events a room's history keeps.
    var historyLength = 1000
    /// How long a quiet room's history lives.
    var historyTTL: Duration = .seconds(24 * 3600)
    /// Bytes of events waiting for a slow subscriber before its oldest logs are dropped.
    var subscriberSoftLimit = 256 * 1024
    /// Bytes of undroppable events waiting before a slow subscriber is closed.
    var subscriberHardLimit = 1024 * 1024
}

/// Whether a resume replays, decided from the stream's pages (pure).
enum RoomResume {
    struct Since: Equatable, Sendable {
        var epoch: String
        var offset: UInt64
    }

    struct Plan: Equatable {
        var recovered: Bool
        /// The offset the subscriber stands at after the replay.
        var offset: UInt64
        var replay: [StreamEntry]
    }

    /// Replays only when the epoch is the subscriber's and no page lost an entry after
    /// `since`: exactly the missed events, or none (never a partial replay).
    static func plan(since: Since, pages: [StreamRead], current: StreamPosition) -> Plan {
        let refused = Plan(recovered: false, offset: current.offset, replay: [])
        guard since.epoch == current.epoch, !pages.isEmpty, pages.allSatisfy({ $0.recovered && $0.epoch == current.epoch }) else { return refused }
        var replay: [StreamEntry] = []
        var expected = since.offset + 1
        for page in pages {
            for entry in page.entries {
                // Consecutive offsets, or it is not exactly what was missed.
                guard entry.offset == expected else { return refused }
                replay.append(entry)
                expected += 1
            }
        }
        return Plan(recovered: true, offset: expected - 1, replay: replay)
    }
}
