import HubIO
import HubStore
import Logging

/// The node's side of each room's channel: subscribed while any loop of this node has a
/// subscriber in the room (one pub/sub subscription per room and node, never a firehose),
/// events put in offset order (`RoomSequencer`), each encoded once (`RoomFrame`) and handed by
/// reference to the loops that have subscribers there.
///
/// Each room's state lives on one loop, its *home* (chosen by the room's hash), and is touched
/// only there, so no lock guards it; loops reach it with `home(room).execute`.
final class RoomRelay: @unchecked Sendable {
    // @unchecked: `states[i]` is touched only on loop i (every access runs on that loop, through
    // `execute` or from its own tasks with that executor preference); the rest is immutable.
    private let loops: [EventLoop]
    private let states: [States]
    private let tables: [RoomTable]
    private let pubSub: any PubSub
    private let streams: any StreamStore
    private let historyTTL: Duration
    private let logger: Logger

    final class States { var rooms: [String: Relayed] = [:] }

    final class Relayed {
        /// Loops (by index) with subscribers in the room.
        var loops: Set<Int> = []
        var subscription: (any PubSubSubscription)?
        var active = false
        /// Loops waiting for the subscription to be live.
        var waiting: [(Result<Void, StoreError>) -> Void] = []
        var sequencer = RoomSequencer<RoomFrame>()
    }

    init(loops: [EventLoop], tables: [RoomTable], pubSub: any PubSub, streams: any StreamStore, historyTTL: Duration, logger: Logger) {
        self.loops = loops
        self.tables = tables
        self.pubSub = pubSub
        self.streams = streams
        self.historyTTL = historyTTL
        self.logger = logger
        states = loops.map { _ in States() }
    }

    static func channel(_ room: String) -> String { "room:" + room }

    func home(_ room: String) -> EventLoop {
        loops[RoomName.spread(room, over: loops.count)]
    }

    /// Loop `index` has its first subscriber in `room`: subscribe the node if it is not yet,
    /// and call `ready` (on the home loop) once events published from now on reach the loop.
    func retain(_ room: String, loop index: Int, ready: @escaping (Result<Void, StoreError>) -> Void) {
        let home = home(room)
        home.execute { [self] in
            let rooms = states[home.index]
            if let relayed = rooms.rooms[room] {
                relayed.loops.insert(index)
                if relayed.active { ready(.success(())) } else { relayed.waiting.append(ready) }
                return
            }
            let relayed = Relayed()
            relayed.loops.insert(index)
            relayed.waiting.append(ready)
            rooms.rooms[room] = relayed
            subscribe(room, relayed, home: home)
        }
    }

    /// Loop `index` has no subscriber left in `room`; the node unsubscribes with the last loop.
    func release(_ room: String, loop index: Int) {
        let home = home(room)
        home.execute { [self] in
            let rooms = states[home.index]
            guard let relayed = rooms.rooms[room] else { return }
            relayed.loops.remove(index)
            guard relayed.loops.isEmpty, relayed.active else { return }
            // (A room still subscribing is dropped when its subscription completes.)
            rooms.rooms[room] = nil
            relayed.subscription?.cancel()
        }
    }

    private func subscribe(_ room: String, _ relayed: Relayed, home: EventLoop) {
        let pubSub = self.pubSub, streams = self.streams, ttl = historyTTL
        Task(executorPreference: home) { [self] in
            let result: Result<StreamPosition, StoreError>
            do throws(StoreError) {
                let subscription = try await pubSub.subscribe(Self.channel(room)) { [self] message in
                    home.execute { self.received(room, message.payload, home: home) }
                }
                relayed.subscription = subscription
                // Live from here: everything before this position is in the stream.
                result = .success(try await streams.open(RoomHistory.stream(room), ttl: ttl))
            } catch {
                result = .failure(error)
            }
            home.execute { [self] in activated(room, relayed, result, home: home) }
        }
    }

    private func activated(_ room: String, _ relayed: Relayed, _ result: Result<StreamPosition, StoreError>, home: EventLoop) {
        let rooms = states[home.index]
        let waiting = relayed.waiting
        relayed.waiting = []
        switch result {
        case .failure(let error):
            relayed.subscription?.cancel()
            if rooms.rooms[room] === relayed { rooms.rooms[room] = nil }
            logger.warning("room subscription failed", metadata: ["room": .string(room), "error": .string("\(error)")])
            for ready in waiting { ready(.failure(error)) }
        case .success(let position):
            guard rooms.rooms[room] === relayed, !relayed.loops.isEmpty else {
                // Everyone left while it subscribed.
                relayed.subscription?.cancel()
                if rooms.rooms[room] === relayed { rooms.rooms[room] = nil }
                for ready in waiting { ready(.success(())) }
                return
            }
            relayed.active = true
            perform(room, relayed, relayed.sequencer.start(epoch: position.epoch, offset: position.offset), home: home)
            for ready in waiting { ready(.success(())) }
        }
    }

    private func received(_ room: String, _ payload: [UInt8], home: EventLoop) {
        guard let relayed = states[home.index].rooms[room] else { return }
        guard let frame = RoomFrame(published: payload) else {
            logger.warning("unreadable room message", metadata: ["room": .string(room), "bytes": .stringConvertible(payload.count)])
            return
        }
        perform(room, relayed, relayed.sequencer.receive(offset: frame.offset, epoch: frame.epoch, frame), home: home)
    }

    private func perform(_ room: String, _ relayed: Relayed, _ actions: [RoomSequencer<RoomFrame>.Action], home: EventLoop) {
        for action in actions {
            switch action {
            case .deliver(let frame):
                for index in relayed.loops {
                    let table = tables[index], loop = loops[index]
                    if loop === home {
                        table.deliver(room, frame)
                    } else {
                        loop.execute { table.deliver(room, frame) }
                    }
                }
            case .fill(let after, let epoch):
                let streams = self.streams
                Task(executorPreference: home) { [self] in
                    let read = try? await streams.read(RoomHistory.stream(room), after: after, limit: StoreLimits.maxBatch)
                    home.execute { [self] in
                        guard states[home.index].rooms[room] === relayed else { return }
                        let actions: [RoomSequencer<RoomFrame>.Action]
                        if let read {
                            let entries = read.entries.map { (offset: $0.offset, frame: RoomFrame(room: room, offset: $0.offset, epoch: epoch, stored: $0.payload)) }
                            actions = relayed.sequencer.filled(entries, epoch: read.epoch)
                        } else {
                            logger.warning("room gap not filled; delivering around it", metadata: ["room": .string(room), "after": .stringConvertible(after)])
                            actions = relayed.sequencer.fillFailed()
                        }
                        perform(room, relayed, actions, home: home)
                    }
                }
            }
        }
    }

    /// Rooms this node is subscribed to (metrics, tests). Reads each home loop's table on it.
    func subscribedRooms() async -> Int {
        var total = 0
        for loop in loops {
            let states = self.states[loop.index]
            total += await withCheckedContinuation { c in loop.execute { c.resume(returning: states.rooms.values.filter(\.active).count) } }
        }
        return total
    }
}
