import HubIO
import HubStore
import HubWebSocket
import HubWebSocketIO

/// A customer connection's side of its rooms: joins (wait for the node's subscription, read
/// what was missed, then go live), takes events from its loop's `RoomTable`, skips those it
/// already has, and writes them through its `SubscriberOutbox` (the slow-consumer policy).
///
/// Lives on the connection's loop; every method runs there.
final class RoomSubscriber {
    enum Membership {
        /// Joining: live events wait here until the history read is answered.
        case joining([RoomFrame])
        /// Live: the epoch and offset of the newest event delivered (or replayed).
        case live(epoch: String, cursor: UInt64)
    }

    /// What a join found, and what it replays.
    struct Joined {
        var epoch: String
        var offset: UInt64
        var recovered: Bool
        var replay: [RoomFrame]
    }

    private let table: RoomTable
    private let metrics: RoomMetrics
    private weak var ws: WebSocketConnection?
    private(set) var rooms: [String: Membership] = [:]
    private var outbox: SubscriberOutbox<SharedBytes>
    private var closed = false
    /// Live events buffered per joining room, at most.
    static let maxJoinBuffer = 4096

    init(ws: WebSocketConnection, table: RoomTable, softLimit: Int, hardLimit: Int, metrics: RoomMetrics) {
        self.ws = ws
        self.table = table
        self.metrics = metrics
        outbox = SubscriberOutbox(softLimit: softLimit, hardLimit: hardLimit)
    }

    /// Enters `room` and waits until the node receives its events. Events from then on are
    /// buffered until `activate`.
    func enter(_ room: String) async throws(StoreError) {
        guard !closed else { throw .unavailable("connection closed") }
        rooms[room] = .joining([])
        let result: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            table.add(self, to: room) { continuation.resume(returning: $0) }
        }
        if case .failure(let error) = result {
            leave(room)
            throw error
        }
        // The connection closed while it waited (`leaveAll` removed the membership already;
        // leaving again is harmless).
        if closed {
            leave(room)
            throw .unavailable("connection closed")
        }
    }

    /// Sends the replay, then the events buffered while joining that come after it, and goes
    /// live. Nothing when the room was left meanwhile.
    func activate(_ room: String, _ joined: Joined) {
        guard case .joining(let buffered) = rooms[room] else { return }
        rooms[room] = .live(epoch: joined.epoch, cursor: joined.offset)
        for frame in joined.replay where rooms[room] != nil { push(frame) }
        for frame in buffered where rooms[room] != nil { receive(room, frame) }
    }

    func leave(_ room: String) {
        guard rooms.removeValue(forKey: room) != nil else { return }
        table.remove(self, from: room)
    }

    /// Leaves every room (the connection closed); later joins are refused.
    func leaveAll() {
        closed = true
        for room in rooms.keys { table.remove(self, from: room) }
        rooms = [:]
    }

    /// An event of `room` from the node's relay.
    func receive(_ room: String, _ frame: RoomFrame) {
        switch rooms[room] {
        case .none:
            return
        case .joining(var buffered):
            guard buffered.count < Self.maxJoinBuffer else {
                closeSlow()
                return
            }
            buffered.append(frame)
            rooms[room] = .joining(buffered)
        case .live(let epoch, let cursor):
            // Already replayed (the join's read and the live channel overlap).
            if frame.epoch == epoch && frame.offset <= cursor { return }
            rooms[room] = .live(epoch: frame.epoch, cursor: frame.offset)
            push(frame)
        }
    }

    private func push(_ frame: RoomFrame) {
        guard let ws else { return }
        let droppedBefore = outbox.droppedTotal
        switch outbox.offer(frame.bytes, size: frame.bytes.count, isLog: frame.isLog) {
        case .write:
            write(frame.bytes, to: ws)
        case .queued:
            metrics.noteDropped(outbox.droppedTotal - droppedBefore)
        case .close:
            closeSlow()
        }
    }

    private func write(_ bytes: SharedBytes, to ws: WebSocketConnection) {
        switch ws.send(shared: bytes) {
        case .sent: metrics.delivered.increment()
        case .backpressure:
            metrics.delivered.increment()
            outbox.markBackpressured()
        case .dropped: break // closed by the socket's own hard limit; `webSocketClosed` cleans up
        }
    }

    /// The connection's output drained below its soft limit: say what was lost, then write
    /// what waits until it pushes back again.
    func writable() {
        guard let ws else { return }
        outbox.writable()
        let dropped = outbox.takeDropped()
        if dropped > 0 { ws.send(text: #"{"type":"lagged","dropped":"# + String(dropped) + "}") }
        while ws.isOpen, let item = outbox.next() {
            write(item.frame, to: ws)
            if outbox.backpressured { break }
        }
    }

    private func closeSlow() {
        metrics.slowConsumers.increment()
        leaveAll()
        ws?.close(.slowConsumer, reason: "slow_consumer")
    }
}
