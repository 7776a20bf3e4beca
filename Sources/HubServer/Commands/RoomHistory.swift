import Foundation
import HubCommands
import HubStore
import Logging

/// The domain's room events into each room's bounded history (`room:<room>` streams), from
/// which subscribers read and resume. Best effort: the records hold the truth, so a failed
/// append is logged and the operation stands.
struct RoomHistory: RoomEventSink {
    let streams: any StreamStore
    let logger: Logger
    /// Newest entries a room keeps, and how long a quiet room lives.
    var maxLength = 1000
    var ttl: Duration = .seconds(24 * 3600)

    static func stream(_ room: String) -> String { "room:" + room }

    func emit(_ event: RoomEvent) async {
        let at = WireTime.format(Date()) ?? ""
        let payload = Array(("{\"event\":\"" + event.name + "\",\"data\":" + event.data + ",\"at\":\"" + at + "\"}").utf8)
        for room in event.rooms {
            do {
                _ = try await streams.append(Self.stream(room), payload, maxLength: maxLength, ttl: ttl)
            } catch {
                logger.warning("room event not kept", metadata: ["room": .string(room), "event": .string(event.name), "error": .string("\(error)")])
            }
        }
    }
}
