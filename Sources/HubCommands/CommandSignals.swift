import struct Foundation.UUID

/// A room event the domain emits: `session.status`, `command.status`, `command.progress`,
/// `approval.requested`, `approval.decided` (protocol/events.md), for the rooms it names.
public struct RoomEvent: Sendable, Equatable {
    /// `session:<id>`, `device:<id>`, `org:<id>`.
    public var rooms: [String]
    public var name: String
    /// The event's data: a JSON object's text.
    public var data: String

    public init(rooms: [String], name: String, data: String) {
        self.rooms = rooms
        self.name = name
        self.data = data
    }
}

/// Where the domain's room events go (the server appends them to the rooms' history and fans
/// them out). Emitting never fails the operation that caused it: the record is already written
/// and is the truth; a lost event is a lost notification, logged by the sink.
public protocol RoomEventSink: Sendable {
    func emit(_ event: RoomEvent) async
}

/// How the domain wakes a device: a `command.available` on its socket on whichever node holds
/// it, and any long poll waiting for it; a `command.cancel` for a claimed command it must stop.
/// Best effort (the device also finds work by claiming, and a canceled lease fails its result).
public protocol DeviceWakeups: Sendable {
    func commandAvailable(deviceID: UUID) async
    func commandCanceled(deviceID: UUID, commandID: UUID) async
}

/// Discards everything (tests of the services alone, tools).
public struct NoSignals: RoomEventSink, DeviceWakeups {
    public init() {}
    public func emit(_ event: RoomEvent) async {}
    public func commandAvailable(deviceID: UUID) async {}
    public func commandCanceled(deviceID: UUID, commandID: UUID) async {}
}
