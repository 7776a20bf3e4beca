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
    /// This connection's memberships by room (the other half of the table's index).
    private(set) var rooms: [String: RoomMembership] = [:]
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
        let membership = RoomMembership(subscriber: self, room: room)
        rooms[room] = membership
        let result: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            table.add(membership) { continuation.resume(returning: $0) }
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
        guard let membership = rooms[room], case .joining(let buffered) = membership.state else { return }
        membership.state = .live(epoch: joined.epoch, cursor: joined.offset)
        var written = 0
        for frame in joined.replay where rooms[room] === membership {
            if push(frame) { written += 1 }
        }
        for frame in buffered where rooms[room] === membership {
            if receive(membership, frame) { written += 1 }
        }
        if written > 0 { metrics.delivered.increment(by: written) }
    }

    func leave(_ room: String) {
        guard let membership = rooms.removeValue(forKey: room) else { return }
        table.remove(membership)
    }

    /// Leaves every room (the connection closed); later joins are refused.
    func leaveAll() {
        closed = true
        for membership in rooms.values { table.remove(membership) }
        rooms = [:]
    }

    /// An event of the membership's room from the node's relay; true when it was written to
    /// the socket now (the caller counts deliveries).
    func receive(_ membership: RoomMembership, _ frame: RoomFrame) -> Bool {
        switch membership.state {
        case .joining(var buffered):
            guard buffered.count < Self.maxJoinBuffer else {
                closeSlow()
                return false
            }
            buffered.append(frame)
            membership.state = .joining(buffered)
            return false
        case .live(let epoch, let cursor):
            // Already replayed (the join's read and the live channel overlap).
            if frame.epoch == epoch && frame.offset <= cursor { return false }
            membership.state = .live(epoch: frame.epoch, cursor: frame.offset)
            return push(frame)
        }
    }

    private func push(_ frame: RoomFrame) -> Bool {
        guard let ws else { return false }
        let droppedBefore = outbox.droppedTotal
        switch outbox.offer(frame.bytes, size: frame.bytes.count, isLog: frame.isLog) {
        case .write:
            return write(frame.bytes, to: ws)
        case .queued:
            metrics.noteDropped(outbox.droppedTotal - droppedBefore)
            return false
        case .close:
            closeSlow()
            return false
        }
    }

    private func write(_ bytes: SharedBytes, to ws: WebSocketConnection) -> Bool {
        switch ws.send(shared: bytes) {
        case .sent: return true
        case .backpressure:
            outbox.markBackpressured()
            return true
        case .dropped: return false // closed by the socket's own hard limit; `webSocketClosed` cleans up
        }
    }

    /// The connection's output drained below its soft limit: say what was lost, then write
    /// what waits until it pushes back again.
    func writable() {
        guard let ws else { return }
        outbox.writable()
        let dropped = outbox.takeDropped()
        if dropped > 0 { ws.send(text: #"{"type":"lagged","dropped":"# + String(dropped) + "}") }
        var written = 0
        while ws.isOpen, let item = outbox.next() {
            if write(item.frame, to: ws) { written += 1 }
            if outbox.backpressured { break }
        }
        if written > 0 { metrics.delivered.increment(by: written) }
    }

    private func closeSlow() {
        metrics.slowConsumers.increment()
        leaveAll()
        ws?.close(.slowConsumer, reason: "slow_consumer")
    }
}
