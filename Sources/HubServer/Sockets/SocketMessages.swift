import Foundation
import HubWebSocket

/// The JSON envelope of both WebSocket endpoints: every message is an object with `type` and
/// an optional `id` (the client's correlation id, echoed in the reply). Replies are `ack` or
/// `error` with a stable `code`. Documented in `protocol/websocket.md`.
struct ClientEnvelope: Decodable {
    var type: String
    var id: String?
    // Fields of the message types the sockets understand; absent when not sent.
    var token: String?
    var room: String?
    var since: Since?
    /// A device socket's queue message, decoded from the same parse when `type` names one
    /// (`DeviceQueueMessage.types`); nil otherwise, and nil when one of its fields has the
    /// wrong type (`queueFieldsInvalid`).
    var queue: DeviceQueueMessage?
    var queueFieldsInvalid = false
    /// A device socket's stream message (`DeviceStreamMessage.types`), likewise.
    var deviceStream: DeviceStreamMessage?

    struct Since: Decodable, Equatable {
        var epoch: String
        var offset: Int64
    }

    private enum Keys: String, CodingKey { case type, id, token, room, since }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        type = try c.decode(String.self, forKey: .type)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        token = try c.decodeIfPresent(String.self, forKey: .token)
        room = try c.decodeIfPresent(String.self, forKey: .room)
        since = try c.decodeIfPresent(Since.self, forKey: .since)
        if DeviceQueueMessage.types.contains(type) {
            do { queue = try DeviceQueueMessage(from: decoder) } catch { queueFieldsInvalid = true }
        } else if DeviceStreamMessage.types.contains(type) {
            deviceStream = try? DeviceStreamMessage(from: decoder)
        }
    }

    /// Largest client message either socket accepts by default (control messages are small;
    /// the device socket allows log batches more, `DeviceStreamMessage.maxBytes`).
    static let maxBytes = 64 * 1024
    /// Longest correlation id echoed back.
    static let maxIDLength = 128

    /// Parses one text message, or says why it is not an envelope.
    static func parse(_ bytes: UnsafeRawBufferPointer, maxBytes: Int = ClientEnvelope.maxBytes) -> Result<ClientEnvelope, ServerMessage> {
        guard bytes.count <= maxBytes else { return .failure(.error(id: nil, code: "message_too_large", message: "messages are at most \(maxBytes) bytes")) }
        do {
            let envelope = try JSONDecoder().decode(ClientEnvelope.self, from: Data(bytes))
            if let id = envelope.id, id.count > maxIDLength {
                return .failure(.error(id: nil, code: "invalid_message", message: "id is at most \(maxIDLength) characters"))
            }
            return .success(envelope)
        } catch {
            return .failure(.error(id: nil, code: "invalid_message", message: "expected a JSON object with a string \"type\""))
        }
    }
}

/// What the hub sends on a socket (besides room events).
enum ServerMessage: Error, Equatable {
    case ack(id: String?, fields: [String: AckValue])
    case error(id: String?, code: String, message: String, state: String? = nil)
    /// A room the connection was subscribed to is no longer visible to it (after a token
    /// refresh re-checked it).
    case unsubscribed(room: String, reason: String)

    enum AckValue: Equatable, Encodable {
        case string(String), int(Int64), bool(Bool)
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .string(let s): try c.encode(s)
            case .int(let i): try c.encode(i)
            case .bool(let b): try c.encode(b)
            }
        }
    }

    /// The JSON text of the message.
    var json: String {
        var object: [String: AckValue] = [:]
        switch self {
        case .ack(let id, let fields):
            object = fields
            object["type"] = .string("ack")
            if let id { object["id"] = .string(id) }
        case .error(let id, let code, let message, let state):
            // `state`: the record's current state, for a stale lease.
            object = ["type": .string("error"), "code": .string(code), "message": .string(message)]
            if let id { object["id"] = .string(id) }
            if let state { object["state"] = .string(state) }
        case .unsubscribed(let room, let reason):
            object = ["type": .string("unsubscribed"), "room": .string(room), "reason": .string(reason)]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(object)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// The hub's WebSocket close codes (`protocol/close-codes.md`). 4000–4499: the client should
/// reconnect (with backoff); 4500–4999: it should not reconnect without a change (new
/// credentials, an operator's action), so a client library can act on the number alone.
extension WebSocketCloseCode {
    /// The token or JWT expired while connected: refresh it and reconnect.
    static let tokenExpired = WebSocketCloseCode(rawValue: 4001)
    /// Credentials missing, wrong, or not sent within the auth deadline.
    static let authFailed = WebSocketCloseCode(rawValue: 4500)
    /// Authenticated, but no longer allowed (device disabled or its secret rotated).
    static let forbidden = WebSocketCloseCode(rawValue: 4503)
    /// A newer connection of the same device took over.
    static let replaced = WebSocketCloseCode(rawValue: 4509)
}
