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
    var relay: RoomRelay!
    private var rooms: [String: Room] = [:]

    final class Room {
        var members: [RoomSubscriber] = []
        var positions: [ObjectIdentifier: Int] = [:]
        /// The node's subscription carries this room's events to this loop.
        var ready = false
        var waiting: [(Result<Void, StoreError>) -> Void] = []
    }

    init(loop: EventLoop) { self.loop = loop }

    /// Adds `member` to `room`; `ready` runs (on this loop) once events published from now on
    /// reach it, or with the error when the node could not subscribe.
    func add(_ member: RoomSubscriber, to room: String, ready: @escaping (Result<Void, StoreError>) -> Void) {
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
        let id = ObjectIdentifier(member)
        if entry.positions[id] == nil {
            entry.positions[id] = entry.members.count
            entry.members.append(member)
        }
        if entry.ready { ready(.success(())) } else { entry.waiting.append(ready) }
    }

    func remove(_ member: RoomSubscriber, from room: String) {
        guard let entry = rooms[room], let slot = entry.positions.removeValue(forKey: ObjectIdentifier(member)) else { return }
        let last = entry.members.removeLast()
        if slot < entry.members.count {
            entry.members[slot] = last
            entry.positions[ObjectIdentifier(last)] = slot
        }
        if entry.members.isEmpty {
            rooms[room] = nil
            relay.release(room, loop: loop.index)
        }
    }

    /// Hands `frame` to every member of `room` on this loop (by reference: the frame's bytes
    /// are shared).
    func deliver(_ room: String, _ frame: RoomFrame) {
        guard let entry = rooms[room], entry.ready else { return }
        // Members may leave while receiving (a slow consumer is closed): iterate over a copy.
        let members = entry.members
        for member in members { member.receive(room, frame) }
    }

    /// Rooms and memberships on this loop (metrics, tests).
    var counts: (rooms: Int, members: Int) { (rooms.count, rooms.values.reduce(0) { $0 + $1.members.count }) }
}
