/// One connection's place in one room: the entry both sides of the two-way index share (the
/// room's member list in `RoomTable`, the connection's room map in `RoomSubscriber`), so that
/// delivering an event to a member touches no dictionary.
///
/// Loop thread only (the table's and the subscriber's loop).
final class RoomMembership {
    enum State {
        /// Joining: live events wait here until the history read is answered.
        case joining([RoomFrame])
        /// Live: the epoch and offset of the newest event delivered (or replayed).
        case live(epoch: String, cursor: UInt64)
    }

    /// Strong: the subscriber's `leave`/`leaveAll` (on close) take the membership out of both
    /// sides, which ends the cycle.
    let subscriber: RoomSubscriber
    let room: String
    var state: State = .joining([])
    /// Position in the room's member list (`RoomTable`), -1 when not in it.
    var slot = -1

    init(subscriber: RoomSubscriber, room: String) {
        self.subscriber = subscriber
        self.room = room
    }
}
