import HubIO
import HubWebSocket

/// One room event as subscribers get it, in its three forms:
///
/// - **stored** in the room's history: `{"event":…,"data":…,"at":…}` (what `RoomHistory`
///   appends; offsets and epochs belong to the stream, not the entry);
/// - **published** between nodes on the room's channel: a one-line header
///   `<offset> <epoch> <L|S>\n` followed by the frame text, so a receiving node orders and
///   filters by offset without parsing JSON (`L`: an `execution.log`, which a lagging
///   subscriber may lose; `S`: anything else, which it never loses);
/// - **delivered**: the WebSocket text `{"type":"event","room":…,"offset":…,"epoch":…,` +
///   the stored object's fields, encoded into a frame once per room and node and queued by
///   reference on every subscriber (`bytes`).
struct RoomFrame {
    let offset: UInt64
    let epoch: String
    /// An `execution.log` event: the only kind a slow subscriber may lose.
    let isLog: Bool
    /// The encoded WebSocket frame (uncompressed: valid on every connection).
    let bytes: SharedBytes

    static let logEventPrefix = Array(#"{"event":"execution.log""#.utf8)

    /// The delivered text of a stored entry. Room names and epochs are plain ASCII (checked
    /// room names, hex epochs), so they need no escaping.
    static func text(room: String, offset: UInt64, epoch: String, stored: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(stored.count + room.utf8.count + epoch.utf8.count + 64)
        out.append(contentsOf: #"{"type":"event","room":""#.utf8)
        out.append(contentsOf: room.utf8)
        out.append(contentsOf: #"","offset":"#.utf8)
        out.append(contentsOf: String(offset).utf8)
        out.append(contentsOf: #","epoch":""#.utf8)
        out.append(contentsOf: epoch.utf8)
        out.append(UInt8(ascii: "\""))
        // The stored object without its opening brace: `,"event":…}`; an empty object adds nothing.
        if stored.count > 2, stored.first == UInt8(ascii: "{") {
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: stored[1...])
        } else {
            out.append(UInt8(ascii: "}"))
        }
        return out
    }

    static func isLog(stored: [UInt8]) -> Bool { stored.starts(with: logEventPrefix) }

    /// A frame from a stored entry (replay, gap fill).
    init(room: String, offset: UInt64, epoch: String, stored: [UInt8]) {
        self.offset = offset
        self.epoch = epoch
        isLog = Self.isLog(stored: stored)
        bytes = Self.encode(Self.text(room: room, offset: offset, epoch: epoch, stored: stored))
    }

    init(offset: UInt64, epoch: String, isLog: Bool, bytes: SharedBytes) {
        self.offset = offset
        self.epoch = epoch
        self.isLog = isLog
        self.bytes = bytes
    }

    static func encode(_ text: [UInt8]) -> SharedBytes {
        text.withUnsafeBytes { SharedBytes(WebSocketWriter.encodeShared(.text, payload: $0, compress: nil)) }
    }

    /// The channel message for a stored entry: header line, then the delivered text.
    static func published(room: String, offset: UInt64, epoch: String, stored: [UInt8]) -> [UInt8] {
        var out = Array("\(offset) \(epoch) \(isLog(stored: stored) ? "L" : "S")\n".utf8)
        out.append(contentsOf: text(room: room, offset: offset, epoch: epoch, stored: stored))
        return out
    }

    /// Reads a channel message: its header and the frame encoded from the text after it.
    init?(published message: [UInt8]) {
        guard let newline = message.firstIndex(of: UInt8(ascii: "\n")), newline < 128 else { return nil }
        let header = message[..<newline].split(separator: UInt8(ascii: " "))
        guard header.count == 3, let offset = UInt64(String(decoding: header[0], as: UTF8.self)),
              header[1].count <= 64, header[2].count == 1 else { return nil }
        self.offset = offset
        epoch = String(decoding: header[1], as: UTF8.self)
        isLog = header[2].first == UInt8(ascii: "L")
        bytes = message[(newline + 1)...].withUnsafeBytes { SharedBytes(WebSocketWriter.encodeShared(.text, payload: $0, compress: nil)) }
    }
}
