import Foundation
import HubAuth
import HubHTTP
import HubIO
import HubWebSocket
import HubWebSocketIO
import Logging

/// The shell of `/ws/customer`: feeds socket events to `CustomerSessionMachine` and performs
/// its actions (send, close, verify a token, check a room, arm the expiry timer). Lives on the
/// connection's loop; async checks run in tasks that prefer that loop, so their results come
/// back on it.
final class CustomerSocket: WebSocketDelegate {
    private var machine: CustomerSessionMachine
    private let authority: any SocketAuthority
    private let preauthenticated: UserPrincipal?
    private let authDeadline: Double
    private let logger: Logger
    private let roomsLayer: RoomsLayer
    private weak var ws: WebSocketConnection?
    /// The connection's memberships (made when the socket opens).
    private var subscriber: RoomSubscriber?
    private var deadlineTimer: TimerHandle?
    private var expiryTimer: TimerHandle?
    /// Join results between the history read and the ack (`activate` sends their replay).
    private var joined: [String: RoomSubscriber.Joined] = [:]

    init(authority: any SocketAuthority, rooms: RoomsLayer, preauthenticated: UserPrincipal?, maxRooms: Int, authDeadline: Double, logger: Logger) {
        self.authority = authority
        roomsLayer = rooms
        self.preauthenticated = preauthenticated
        self.authDeadline = authDeadline
        self.logger = logger
        machine = CustomerSessionMachine(maxRooms: maxRooms)
    }

    /// The rooms this connection is subscribed to (tests).
    var rooms: Set<String> { machine.rooms }

    func webSocketOpened(_ ws: WebSocketConnection) {
        self.ws = ws
        subscriber = roomsLayer.subscriber(for: ws, loop: ws.channel.loop)
        if preauthenticated == nil {
            deadlineTimer = ws.channel.loop.schedule(after: UInt64(authDeadline * 1e9)) { [weak self] in
                self?.handle(.authDeadlinePassed)
            }
        }
        handle(.opened(preauthenticated: preauthenticated))
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        switch ClientEnvelope.parse(text).flatMap({ $0.customerKind }) {
        case .success(let kind): handle(.message(kind))
        case .failure(let reply): handle(.invalidMessage(reply))
        }
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        handle(.invalidMessage(.error(id: nil, code: "invalid_message", message: "messages are JSON text frames")))
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        deadlineTimer?.cancel()
        expiryTimer?.cancel()
        // The two-way index: the connection leaves all its rooms at once.
        subscriber?.leaveAll()
        subscriber = nil
    }

    func webSocketWritable(_ ws: WebSocketConnection) {
        subscriber?.writable()
    }

    private func handle(_ event: CustomerSessionMachine.Event) {
        for action in machine.handle(event) { perform(action) }
    }

    private func perform(_ action: CustomerSessionMachine.Action) {
        guard let ws else { return }
        let loop = ws.channel.loop
        switch action {
        case .send(let message):
            ws.send(text: message.json)
        case .close(let code, let reason):
            deadlineTimer?.cancel()
            expiryTimer?.cancel()
            ws.close(WebSocketCloseCode(rawValue: code), reason: reason)
        case .cancelAuthDeadline:
            deadlineTimer?.cancel()
            deadlineTimer = nil
        case .scheduleExpiry(let at):
            expiryTimer?.cancel()
            // Clamped: a validly signed token may carry any `exp`, and the timer takes nanoseconds.
            let delay = min(max(0, Double(at) - Date().timeIntervalSince1970), 366 * 86_400)
            expiryTimer = loop.schedule(after: UInt64(delay * 1e9)) { [weak self] in
                self?.handle(.expiryTimer(now: Int64(Date().timeIntervalSince1970)))
            }
        case .verify(let token, let id):
            let authority = self.authority, ip = RequestContext.ip(of: ws.channel.peer)
            Task(executorPreference: loop) { [weak self] in
                do {
                    let user = try await authority.verifyUser(token: token, on: loop, ip: ip)
                    self?.handle(.verified(id: id, user))
                } catch let problem as Problem where problem.status == 401 || problem.status == 429 {
                    self?.handle(.verificationFailed(id: id, detail: problem.detail ?? "invalid token"))
                } catch {
                    self?.handle(.verificationUnavailable(id: id))
                }
            }
        case .join(let room, let since, let id):
            guard let subscriber else {
                handle(.joinFailed(id: id, room: room))
                return
            }
            let layer = roomsLayer, logger = self.logger
            Task(executorPreference: loop) { [weak self] in
                do {
                    try await subscriber.enter(room)
                    let joined = try await layer.resume(room, since: since)
                    self?.joined[room] = joined
                    self?.handle(.joined(id: id, room: room, epoch: joined.epoch, offset: joined.offset, recovered: joined.recovered))
                } catch {
                    logger.warning("room join failed", metadata: ["room": .string(room), "error": .string("\(error)")])
                    subscriber.leave(room)
                    self?.handle(.joinFailed(id: id, room: room))
                }
            }
        case .activate(let room):
            if let joined = joined.removeValue(forKey: room) { subscriber?.activate(room, joined) }
        case .leave(let room):
            joined[room] = nil
            subscriber?.leave(room)
        case .checkRoom(let room, let user, let id, let recheck):
            guard let parsed = RoomName.parse(room) else { return }
            let authority = self.authority, logger = self.logger
            Task(executorPreference: loop) { [weak self] in
                let allowed: Bool
                do {
                    allowed = try await authority.userCanSee(room: parsed.kind, id: parsed.id, user: user)
                } catch {
                    logger.warning("room check failed", metadata: ["room": .string(room), "error": .string("\(error)")])
                    if recheck {
                        // Fail closed: a room that cannot be re-checked is dropped.
                        self?.handle(.roomChecked(id: id, room: room, allowed: false, recheck: true))
                    } else {
                        // A store outage must not read as "no such room": a retryable error.
                        self?.handle(.roomCheckUnavailable(id: id, room: room))
                    }
                    return
                }
                self?.handle(.roomChecked(id: id, room: room, allowed: allowed, recheck: recheck))
            }
        }
    }
}
