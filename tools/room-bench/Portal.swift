import BenchSupport
import Foundation
import HubIO
import HubWebSocket
import HubWebSocketIO

/// What the portals of one loop share: the counters, and the latency samples of the pacer
/// portals (kept only while `recording`). Loop thread only, except the counters.
final class PortalLane {
    let counters: Counters
    var recording = false
    var samples: [UInt64] = []
    init(counters: Counters) {
        self.counters = counters
        samples.reserveCapacity(1 << 20)
    }
}

/// One customer portal on `/ws/customer` (user JWT in Authorization) watching one session room.
/// It subscribes when the socket opens, then checks every event: offsets grow by one (a jump
/// means lost, duplicated or reordered events; counted), and an event that carries the
/// devices' `bench_t` is a delivery. The room's first portal is its *pacer*: it sits on the
/// device's loop, tells the device about each delivery (the device's delivery window), and
/// records the latency `now − bench_t` (same host, same monotonic clock). Loop thread only.
final class Portal: WebSocketDelegate {
    let index: Int
    let room: String
    let lane: PortalLane
    /// Set on the room's pacer portal only.
    let pacer: StreamingDevice?
    private(set) var subscribed = false
    private var lastOffset: UInt64 = 0
    /// The end of the run closes the sockets on purpose.
    var closing = false

    init(index: Int, room: String, lane: PortalLane, pacer: StreamingDevice?) {
        self.index = index
        self.room = room
        self.lane = lane
        self.pacer = pacer
    }

    func webSocketOpened(_ ws: WebSocketConnection) {
        if ws.send(text: "{\"type\":\"subscribe\",\"id\":\"s\",\"room\":\"\(room)\"}") == .dropped {
            Problems.add("portal \(index): subscribe not sent (connection gone)")
        }
    }

    // Events are `{"type":"event","room":…,"offset":N,"epoch":…,"event":…,"data":{…},"at":…}`
    // (RoomFrame); the scans look for their keys anywhere in the text, so no order is assumed.
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        let now = monotonicNanoseconds()
        let counters = lane.counters
        if contains(text, "\"type\":\"event\""), let offset = number(after: "\"offset\":", in: text) {
            if lastOffset != 0 && offset != lastOffset &+ 1 { counters.bump(.offsetJumps) }
            lastOffset = offset
            guard let t = number(after: "bench_t", in: text) else {
                counters.bump(.otherEvents)
                return
            }
            counters.bump(.deliveries)
            counters.bump(.deliveryBytes, by: text.count)
            if let pacer {
                if lane.recording { lane.samples.append(now &- t) }
                pacer.delivered()
            }
            return
        }
        guard let type = jsonString(text, key: "type") else {
            return Problems.add("portal \(index): message without type: \(String(decoding: text.prefix(200), as: UTF8.self))")
        }
        switch type {
        case "ack" where !subscribed:
            subscribed = true
            // Live from the room's offset at the subscribe: the next event is offset + 1.
            lastOffset = number(after: "\"offset\":", in: text) ?? 0
            counters.bump(.portalsReady)
        case "lagged":
            counters.bump(.lagged)
        default:
            Problems.add("portal \(index): \(String(decoding: text.prefix(300), as: UTF8.self))")
        }
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        Problems.add("portal \(index): unexpected binary message")
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        if !closing { Problems.add("portal \(index) closed: code \(code.map { "\($0)" } ?? "none") \(reason)") }
    }
}

/// Whether `needle` occurs in `bytes`.
func contains(_ bytes: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
    firstIndex(of: needle, in: bytes) != nil
}
