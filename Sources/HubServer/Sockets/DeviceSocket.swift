import Foundation
import HubAuth
import HubCommands
import HubHTTP
import HubIO
import HubWebSocket
import HubWebSocketIO

/// The shell of `/ws/device` for an authenticated device: registers the socket (so revocation
/// and a newer connection can close it, on this node or, through the presence, on another),
/// answers `heartbeat` and `ping`, and re-checks its token at most once per
/// `revalidateInterval` on a heartbeat, so a revocation whose control message was lost (Redis
/// pub/sub is at most once) still closes the socket within that time. Queue messages (claim,
/// extend, release, progress, result) go to the lease service (`DeviceQueueMessage`); stream
/// messages (log, logs, status) to the device-stream service, log batches one at a time
/// (`DeviceStreamState`). Emits `device.status` online when it opens, offline when it closes
/// (unless replaced by a newer connection, which keeps the device online).
final class DeviceSocket: WebSocketDelegate {
    let device: DevicePrincipal
    private let token: String
    private let registry: DeviceConnections
    private let authority: any SocketAuthority
    private let presence: DevicePresence
    private let revalidateInterval: UInt64
    /// The queue's device side and the device streams (nil until the service started).
    private let commands: CommandsLayer
    private var streamState: DeviceStreamState
    /// Set once the open's presence takeover is done: a heartbeat before it must not read the
    /// previous holder's presence as a sign that this socket was replaced.
    private var presenceTaken = false
    private weak var ws: WebSocketConnection?
    private var registration: UInt64 = 0
    private var lastValidated: UInt64 = 0
    private var validating = false
    /// Queue messages being answered; bounded so a device cannot pile up work on the hub.
    private var inFlight = 0
    static let maxInFlight = 32

    init(device: DevicePrincipal, token: String, registry: DeviceConnections, authority: any SocketAuthority,
         presence: DevicePresence, revalidateInterval: Double, commands: CommandsLayer) {
        self.device = device
        streamState = DeviceStreamState(linesPerSecond: commands.config.deviceLogRate)
        self.commands = commands
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
        recordSeen(loop: ws.channel.loop)
        // Take the presence over; an older socket on another node is closed there with 4509
        // (on this node `register` already did). Best effort, like every presence write.
        let presence = self.presence, device = self.device, commands = self.commands
        Task(executorPreference: ws.channel.loop) { [weak self] in
            let previous = try? await presence.takeOver(device.deviceID)
            self?.presenceTaken = true
            if let previous, let router = commands.router {
                await router.send(NodeMessage(op: "replace", device_id: device.deviceID.lowercasedString), to: previous)
            }
            await commands.streams?.reportStatus(device: device, online: true, node: presence.nodeID, status: nil)
        }
    }

    /// Best effort: a presence write that fails is repeated on the next heartbeat. When another
    /// node holds the presence, a newer socket of the device opened there and its `replace` was
    /// lost: this socket closes as replaced (without touching the presence).
    private func refreshPresence(loop: EventLoop) {
        guard presenceTaken else { return }
        let presence = self.presence, id = device.deviceID
        Task(executorPreference: loop) { [weak self] in
            guard case .heldElsewhere = try? await presence.refresh(id) else { return }
            self?.ws?.close(.replaced, reason: "replaced by a newer connection")
        }
    }

    private func recordSeen(loop: EventLoop) {
        let authority = self.authority, id = device.deviceID
        Task(executorPreference: loop) { await authority.deviceSeen(id) }
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        switch ClientEnvelope.parse(text, maxBytes: DeviceStreamMessage.maxBytes) {
        case .failure(let reply):
            ws.send(text: reply.json)
        case .success(let message):
            switch message.type {
            case "heartbeat":
                heartbeat(id: message.id, ws: ws)
            case "ping":
                ws.send(text: ServerMessage.ack(id: message.id, fields: [:]).json)
            case let type where DeviceQueueMessage.types.contains(type):
                guard let leases = commands.leases else {
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
                // A command given back or finished through this socket takes no more lines.
                if type == "result" || type == "release", let id = queueMessage?.command_id.flatMap(UUID.init(uuidString:)) {
                    streamState.forget(id)
                }
                Task(executorPreference: ws.channel.loop) { [weak self] in
                    let reply = await DeviceQueueMessage.reply(to: queueMessage, device: deviceID, leases: leases)
                    guard let self else { return }
                    self.inFlight -= 1
                    self.ws?.send(text: reply)
                }
            case "log", "logs":
                logBatch(message, ws: ws)
            case "status":
                status(message, ws: ws)
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
        let presence = self.presence, device = self.device, commands = self.commands
        Task(executorPreference: ws.channel.loop) {
            // Offline only when this node still held the presence (not when the device already
            // connected through another node).
            guard (try? await presence.markOffline(device.deviceID)) == true else { return }
            await commands.streams?.reportStatus(device: device, online: false, node: nil, status: nil)
        }
    }

    // MARK: streams

    private func logBatch(_ message: ClientEnvelope, ws: WebSocketConnection) {
        guard let streams = commands.streams else {
            ws.send(text: ServerMessage.error(id: message.id, code: "unavailable", message: "the queue is starting").json)
            return
        }
        guard let stream = message.deviceStream else {
            ws.send(text: ServerMessage.error(id: message.id, code: "invalid_message", message: "a field has the wrong type").json)
            return
        }
        let batch: DeviceStreamState.Batch
        do {
            let (commandID, lines) = try stream.logBatch()
            batch = DeviceStreamState.Batch(id: message.id, commandID: commandID, lines: lines)
        } catch {
            // `logBatch` throws only a Problem (typed).
            ws.send(text: ServerMessage.error(id: message.id, code: error.code, message: error.detail ?? error.title).json)
            return
        }
        switch streamState.arrive(batch, now: ws.channel.loop.now) {
        case .start: write(batch, streams: streams, loop: ws.channel.loop)
        case .queued: break
        case .refuse(let code, let text): ws.send(text: ServerMessage.error(id: message.id, code: code, message: text).json)
        }
    }

    /// Writes one batch, answers it (an `ack` only when it has an `id`; errors always), then
    /// the next waiting batch.
    private func write(_ batch: DeviceStreamState.Batch, streams: DeviceStreamService, loop: EventLoop) {
        let deviceID = device.deviceID
        Task(executorPreference: loop) { [weak self] in
            var reply: ServerMessage?
            do {
                let held: DeviceStreamService.HeldCommand
                if let known = self?.streamState.held(batch.commandID, now: loop.now) {
                    held = known
                } else {
                    held = try await streams.held(deviceID: deviceID, commandID: batch.commandID, leaseToken: nil)
                    self?.streamState.remember(held, now: loop.now)
                }
                _ = try await streams.append(batch.lines, to: held)
                reply = batch.id.map { ServerMessage.ack(id: $0, fields: [:]) }
            } catch let problem as Problem {
                self?.streamState.forget(batch.commandID)
                reply = .error(id: batch.id, code: problem.code, message: problem.detail ?? problem.title, state: problem.state)
            } catch {
                reply = .error(id: batch.id, code: "unavailable", message: "the store is unavailable; retry")
            }
            guard let self else { return }
            if let reply { self.ws?.send(text: reply.json) }
            if let next = self.streamState.finished() { self.write(next, streams: streams, loop: loop) }
        }
    }

    /// `status`: the device's own status map, fanned out as `device.status`.
    private func status(_ message: ClientEnvelope, ws: WebSocketConnection) {
        guard let streams = commands.streams else {
            ws.send(text: ServerMessage.error(id: message.id, code: "unavailable", message: "the queue is starting").json)
            return
        }
        let text: String
        do {
            guard let stream = message.deviceStream else { throw Problem.invalidArgument("status must be a JSON object") }
            text = try stream.statusText()
        } catch let problem as Problem {
            ws.send(text: ServerMessage.error(id: message.id, code: problem.code, message: problem.detail ?? problem.title).json)
            return
        } catch {
            ws.send(text: ServerMessage.error(id: message.id, code: "invalid_argument", message: "status must be a JSON object").json)
            return
        }
        guard streamState.spend(1, now: ws.channel.loop.now) else {
            ws.send(text: ServerMessage.error(id: message.id, code: "rate_limited", message: "too many messages; slow down").json)
            return
        }
        let device = self.device, node = presence.nodeID, id = message.id
        Task(executorPreference: ws.channel.loop) { [weak self] in
            await streams.reportStatus(device: device, online: true, node: node, status: text)
            if let id { self?.ws?.send(text: ServerMessage.ack(id: id, fields: [:]).json) }
        }
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
