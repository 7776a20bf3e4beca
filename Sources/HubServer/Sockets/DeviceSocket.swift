import Foundation
import HubAuth
import HubCommands
import HubIO
import HubWebSocket
import HubWebSocketIO

/// The shell of `/ws/device` for an authenticated device: registers the socket (so revocation
/// and a newer connection can close it), answers `heartbeat` and `ping`, and re-checks its
/// token at most once per `revalidateInterval` on a heartbeat, so a revocation whose control
/// message was lost (Redis pub/sub is at most once) still closes the socket within that time.
/// Queue messages (claim, extend, release, progress, result) go to the lease service
/// (`DeviceQueueMessage`); log messages arrive with the rooms layer.
final class DeviceSocket: WebSocketDelegate {
    let device: DevicePrincipal
    private let token: String
    private let registry: DeviceConnections
    private let authority: any SocketAuthority
    private let presence: DevicePresence
    private let revalidateInterval: UInt64
    /// The queue's device side; nil until the commands service started.
    private let leases: () -> LeaseService?
    private weak var ws: WebSocketConnection?
    private var registration: UInt64 = 0
    private var lastValidated: UInt64 = 0
    private var validating = false
    /// Queue messages being answered; bounded so a device cannot pile up work on the hub.
    private var inFlight = 0
    static let maxInFlight = 32

    init(device: DevicePrincipal, token: String, registry: DeviceConnections, authority: any SocketAuthority,
         presence: DevicePresence, revalidateInterval: Double, leases: @escaping () -> LeaseService?) {
        self.device = device
        self.leases = leases
        self.presence = presence
        self.token = token
        self.registry = registry
        self.authority = authority
        self.revalidateInterval = UInt64(revalidateInterval * 1e9)
    }

    func webSocketOpened(_ ws: WebSocketConnection) {
        self.ws = ws
        lastValidated = ws.channel.loop.now
        registration = registry.register(device.deviceID, ws)
        refreshPresence(loop: ws.channel.loop)
        recordSeen(loop: ws.channel.loop)
    }

    /// Best effort: a presence write that fails is repeated on the next heartbeat.
    private func refreshPresence(loop: EventLoop) {
        let presence = self.presence, id = device.deviceID
        Task(executorPreference: loop) { try? await presence.markOnline(id) }
    }

    private func recordSeen(loop: EventLoop) {
        let authority = self.authority, id = device.deviceID
        Task(executorPreference: loop) { await authority.deviceSeen(id) }
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        switch ClientEnvelope.parse(text) {
        case .failure(let reply):
            ws.send(text: reply.json)
        case .success(let message):
            switch message.type {
            case "heartbeat":
                heartbeat(id: message.id, ws: ws)
            case "ping":
                ws.send(text: ServerMessage.ack(id: message.id, fields: [:]).json)
            case let type where DeviceQueueMessage.types.contains(type):
                guard let leases = leases() else {
                    ws.send(text: ServerMessage.error(id: message.id, code: "unavailable", message: "the queue is starting", state: nil).json)
                    return
                }
                guard inFlight < Self.maxInFlight else {
                    ws.send(text: ServerMessage.error(id: message.id, code: "rate_limited",
                                                        message: "at most \(Self.maxInFlight) queue messages in flight", state: nil).json)
                    return
                }
                // Replies go out in completion order, each carrying its request's `id`.
                inFlight += 1
                let queueMessage = message.queue, deviceID = device.deviceID
                Task(executorPreference: ws.channel.loop) { [weak self] in
                    let reply = await DeviceQueueMessage.reply(to: queueMessage, device: deviceID, leases: leases)
                    guard let self else { return }
                    self.inFlight -= 1
                    self.ws?.send(text: reply)
                }
            default:
                ws.send(text: ServerMessage.error(id: message.id, code: "unknown_type", message: "unknown message type \(message.type.prefix(64))").json)
            }
        }
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        ws.send(text: ServerMessage.error(id: nil, code: "invalid_message", message: "messages are JSON text frames").json)
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        registry.unregister(device.deviceID, sequence: registration, loop: ws.channel.loop)
        recordSeen(loop: ws.channel.loop)
        // A socket replaced by a newer one leaves the presence to its successor.
        guard code != .replaced else { return }
        let presence = self.presence, id = device.deviceID
        Task(executorPreference: ws.channel.loop) { try? await presence.markOffline(id) }
    }

    private func heartbeat(id: String?, ws: WebSocketConnection) {
        let loop = ws.channel.loop
        refreshPresence(loop: loop)
        guard !validating, loop.now &- lastValidated >= revalidateInterval else {
            ws.send(text: ServerMessage.ack(id: id, fields: [:]).json)
            return
        }
        validating = true
        let authority = self.authority, token = self.token, deviceID = device.deviceID
        Task(executorPreference: loop) { [weak self] in
            let valid = await authority.deviceTokenIsValid(token, deviceID: deviceID)
            guard let self, let ws = self.ws else { return }
            self.validating = false
            if valid == false {
                // Expired or revoked (the two look alike here): re-authenticate, which fails for
                // good if the device was disabled. Explicit revocations close with 4503 instead.
                ws.close(.tokenExpired, reason: "device token no longer valid")
                return
            }
            // nil: the store could not answer; keep the socket and try on a later heartbeat.
            if valid == true { self.lastValidated = loop.now }
            ws.send(text: ServerMessage.ack(id: id, fields: [:]).json)
        }
    }
}
