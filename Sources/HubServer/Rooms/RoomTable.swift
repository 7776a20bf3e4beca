import HubIO
import HubStore

/// One loop's rooms: which of its connections are in which room, both ways — the table maps a
/// room to its members, each member (`RoomSubscriber`) knows its rooms — so an event reaches a
/// room's members without a search and a closing connection leaves all its rooms at once.
///
/// Touched only on its loop. The first member of a room on this loop asks the relay for the
/// room's channel; the last one's leaving gives it back.
final class RoomTable: @unchecked Sendable {
    // @unchecked: every method runs on `loop` (the relay and the subscribers call it there);
    // it is passed across threads only to be used back on its loop.
    let loop: EventLoop
    let metrics: RoomMetrics
    var relay: RoomRelay!
    private var rooms: [String: Room] = [:]

    final class Room {
        var members: [RoomMembership] = []
        /// The node's subscription carries this room's events to this loop.
        var ready = false
        var waiting: [(Result<Void, StoreError>) -> Void] = []
    }

    init(loop: EventLoop, metrics: RoomMetrics) {
        self.loop = loop
        self.metrics = metrics
    }

    /// Adds `member` to its room; `ready` runs (on this loop) once events published from now on
    /// reach it, or with the error when the node could not subscribe.
    func add(_ member: RoomMembership, ready: @escaping (Result<Void, StoreError>) -> Void) {
        let room = member.room
        let entry: Room
        if let existing = rooms[room] {
            entry = existing
        } else {
            entry = Room()
            rooms[room] = entry
            let loop = self.loop
            relay.retain(room, loop: loop.index) { result in
                loop.execute { [self] in
                    guard rooms[room] === entry else { return }
                    if case .success = result { entry.ready = true } else { rooms[room] = nil }
                    let waiting = entry.waiting
                    entry.waiting = []
                    for callback in waiting { callback(result) }
                }
            }
        }
        if member.slot < 0 {
            member.slot = entry.members.count
            entry.members.append(member)
        }
        if entry.ready { ready(.success(())) } else { entry.waiting.append(ready) }
    }

    func remove(_ member: RoomMembership) {
        let room = member.room
        guard member.slot >= 0, let entry = rooms[room], member.slot < entry.members.count, entry.members[member.slot] === member else { return }
        let slot = member.slot
        member.slot = -1
        let last = entry.members.removeLast()
        if slot < entry.members.count {
            entry.members[slot] = last
            last.slot = slot
        }
        if entry.members.isEmpty {
            rooms[room] = nil
            relay.release(room, loop: loop.index)
        }
    }

    /// Hands `frame` to every member of `room` on this loop (by reference: the frame's bytes
    /// are shared). One dictionary look-up per event and loop, none per member.
    func deliver(_ room: String, _ frame: RoomFrame) {
        guard let entry = rooms[room], entry.ready else { return }
        // Members may leave while receiving (a slow consumer is closed): iterate over a copy.
        let members = entry.members
        var written = 0
        for member in members where member.subscriber.receive(member, frame) { written += 1 }
        if written > 0 { metrics.delivered.increment(by: written) }
    }

    /// Rooms and memberships on this loop (metrics, tests).
    var counts: (rooms: Int, members: Int) { (rooms.count, rooms.values.reduce(0) { $0 + $1.members.count }) }
}
