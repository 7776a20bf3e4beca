import Foundation
import HubAuth

/// The `/ws/customer` session, as a state machine without sockets: events in, actions out; the
/// socket shell (`CustomerSocket`) performs the actions and feeds back their results.
///
///     awaitingAuth ──auth ok──▶ authenticated ──auth ok (same user)──▶ authenticated (rooms re-checked)
///          │ deadline / bad token / other message          │ exp reached / bad refresh
///          ▼                                                ▼
///        closed ◀────────────────────────────────────────── closed
///
/// A JWT comes in the upgrade's `Authorization` header (the socket opens authenticated) or in
/// a first `auth` message within the auth deadline (browsers cannot set headers on a
/// WebSocket). A fresh `auth` message refreshes the session; when the token's `exp` passes
/// without one, the socket closes with `token_expired`.
struct CustomerSessionMachine {
    enum State: Equatable {
        case awaitingAuth
        case verifying
        case authenticated(UserPrincipal)
        case closed
    }

    enum Event: Equatable {
        case opened(preauthenticated: UserPrincipal?)
        case message(ClientEnvelope.Kind)
        case invalidMessage(ServerMessage)
        case verified(id: String?, UserPrincipal)
        case verificationFailed(id: String?, detail: String)
        /// The token could not be checked (a store outage): not the client's fault.
        case verificationUnavailable(id: String?)
        case roomChecked(id: String?, room: String, allowed: Bool, recheck: Bool)
        /// A first check could not run (a store outage): the subscription is withdrawn.
        case roomCheckUnavailable(id: String?, room: String)
        /// The room's events reach the connection; what the history read found.
        case joined(id: String?, room: String, epoch: String, offset: UInt64, recovered: Bool)
        /// The node could not subscribe to the room or read its history (a store outage).
        case joinFailed(id: String?, room: String)
        case authDeadlinePassed
        /// The expiry timer fired; `now` (unix s) is checked against the current token's exp,
        /// since a refresh may have moved it.
        case expiryTimer(now: Int64)
    }

    enum Action: Equatable {
        case send(ServerMessage)
        case close(code: UInt16, reason: String)
        case verify(token: String, id: String?)
        case checkRoom(room: String, user: UserPrincipal, id: String?, recheck: Bool)
        /// Enter the room and read its history from `since`; answer with `joined`/`joinFailed`.
        case join(room: String, since: RoomResume.Since?, id: String?)
        /// Send the replay and go live (after the ack went out).
        case activate(room: String)
        case leave(room: String)
        case scheduleExpiry(atUnixSeconds: Int64)
        case cancelAuthDeadline
    }

    let maxRooms: Int
    private(set) var state: State = .awaitingAuth
    private(set) var rooms: Set<String> = []
    /// Rooms whose check or join is under way; an `unsubscribe` meanwhile cancels the
    /// subscription.
    private(set) var pendingRooms: Set<String> = []
    /// Where each pending subscription resumes from.
    private var pendingSince: [String: RoomResume.Since] = [:]

    init(maxRooms: Int) { self.maxRooms = maxRooms }

    mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.closed, _):
            return []

        case (_, .opened(let user)):
            guard let user else { return [] }
            state = .authenticated(user)
            return [.cancelAuthDeadline, .scheduleExpiry(atUnixSeconds: user.expiresAt)]

        case (.awaitingAuth, .authDeadlinePassed), (.verifying, .authDeadlinePassed):
            return close(4500, "auth_failed: no valid auth message within the deadline")
        case (_, .authDeadlinePassed):
            return []

        case (.awaitingAuth, .invalidMessage(let reply)):
            return [.send(reply)] + close(4500, "auth_failed: the first message must be auth")
        case (_, .invalidMessage(let reply)):
            return [.send(reply)]

        case (.awaitingAuth, .message(.auth(let id, let token))):
            state = .verifying
            return [.verify(token: token, id: id)]
        case (.verifying, .message(let m)):
            return [.send(.error(id: m.id, code: "unauthenticated", message: "wait for the auth reply"))]
        case (.awaitingAuth, .message(let m)):
            return [.send(.error(id: m.id, code: "unauthenticated", message: "send auth first"))] + close(4500, "auth_failed: the first message must be auth")

        case (.verifying, .verified(let id, let user)):
            state = .authenticated(user)
            return [.cancelAuthDeadline, .scheduleExpiry(atUnixSeconds: user.expiresAt),
                    .send(.ack(id: id, fields: ["expires_at": .int(user.expiresAt)]))]
        case (.verifying, .verificationFailed(let id, let detail)):
            return [.send(.error(id: id, code: "unauthenticated", message: detail))] + close(4500, "auth_failed")
        case (.verifying, .verificationUnavailable(let id)):
            // Back to waiting: the client may retry its auth within the same deadline.
            state = .awaitingAuth
            return [.send(.error(id: id, code: "unavailable", message: "could not check the token; retry shortly"))]
        case (.authenticated, .verificationUnavailable(let id)):
            return [.send(.error(id: id, code: "unavailable", message: "could not check the token; retry shortly"))]

        case (.authenticated(let current), .message(.auth(let id, let token))):
            _ = current
            return [.verify(token: token, id: id)]
        case (.authenticated(let current), .verified(let id, let user)):
            guard user.userID == current.userID else {
                return [.send(.error(id: id, code: "unauthenticated", message: "a refreshed token must be for the same user"))] + close(4500, "auth_failed: user changed")
            }
            state = .authenticated(user)
            // Membership may have changed since the rooms were granted: check each again.
            let recheck = rooms.sorted().map { Action.checkRoom(room: $0, user: user, id: nil, recheck: true) }
            return [.scheduleExpiry(atUnixSeconds: user.expiresAt), .send(.ack(id: id, fields: ["expires_at": .int(user.expiresAt)]))] + recheck
        case (.authenticated, .verificationFailed(let id, let detail)):
            // A failed refresh leaves the current token in force until its own expiry.
            return [.send(.error(id: id, code: "unauthenticated", message: detail))]

        case (.authenticated(let user), .expiryTimer(let now)):
            guard now >= user.expiresAt else { return [.scheduleExpiry(atUnixSeconds: user.expiresAt)] }
            return close(4001, "token_expired")
        case (_, .expiryTimer):
            return []

        case (.authenticated(let user), .message(.subscribe(let id, let raw, let since))):
            guard let room = RoomName.canonical(raw) else {
                return [.send(.error(id: id, code: "invalid_argument", message: "rooms are session:<uuid>, device:<uuid> or org:<uuid>"))]
            }
            // Subscribing twice is harmless: the events keep coming, nothing is replayed.
            if rooms.contains(room) { return [.send(.ack(id: id, fields: ["room": .string(room)]))] }
            guard rooms.count + pendingRooms.count < maxRooms, !pendingRooms.contains(room) else {
                return [.send(.error(id: id, code: "too_many_rooms", message: "at most \(maxRooms) rooms per connection"))]
            }
            pendingRooms.insert(room)
            pendingSince[room] = since
            return [.checkRoom(room: room, user: user, id: id, recheck: false)]
        case (.authenticated, .roomChecked(let id, let room, let allowed, let recheck)):
            if recheck {
                guard !allowed, rooms.remove(room) != nil else { return [] }
                return [.send(.unsubscribed(room: room, reason: "not_found")), .leave(room: room)]
            }
            // Unsubscribed while the check ran: the subscription was withdrawn.
            guard pendingRooms.contains(room) else { return [] }
            guard allowed else {
                pendingRooms.remove(room)
                pendingSince[room] = nil
                // The same answer as for a room that does not exist.
                return [.send(.error(id: id, code: "not_found", message: "no such room"))]
            }
            return [.join(room: room, since: pendingSince.removeValue(forKey: room), id: id)]
        case (.authenticated, .joined(let id, let room, let epoch, let offset, let recovered)):
            // Unsubscribed while it joined: leave again.
            guard pendingRooms.remove(room) != nil else { return [.leave(room: room)] }
            rooms.insert(room)
            return [.send(.ack(id: id, fields: ["room": .string(room), "epoch": .string(epoch), "offset": .int(Int64(offset)), "recovered": .bool(recovered)])),
                    .activate(room: room)]
        case (.authenticated, .joinFailed(let id, let room)), (.authenticated, .roomCheckUnavailable(let id, let room)):
            guard pendingRooms.remove(room) != nil else { return [] }
            pendingSince[room] = nil
            return [.send(.error(id: id, code: "unavailable", message: "could not subscribe to the room; retry shortly"))]
        case (.authenticated, .message(.unsubscribe(let id, let raw))):
            guard let room = RoomName.canonical(raw) else {
                return [.send(.error(id: id, code: "invalid_argument", message: "rooms are session:<uuid>, device:<uuid> or org:<uuid>"))]
            }
            rooms.remove(room)
            pendingRooms.remove(room)
            pendingSince[room] = nil
            return [.leave(room: room), .send(.ack(id: id, fields: ["room": .string(room)]))]
        case (.authenticated, .message(.ping(let id))):
            return [.send(.ack(id: id, fields: [:]))]
        case (.authenticated, .message(.unknown(let id, let type))):
            return [.send(.error(id: id, code: "unknown_type", message: "unknown message type \(type)"))]

        case (_, .joined(_, let room, _, _, _)):
            return [.leave(room: room)]
        case (_, .roomChecked), (_, .roomCheckUnavailable), (_, .joinFailed), (_, .verified), (_, .verificationFailed), (_, .verificationUnavailable):
            return []
        }
    }

    private mutating func close(_ code: UInt16, _ reason: String) -> [Action] {
        state = .closed
        return [.close(code: code, reason: reason)]
    }
}

extension ClientEnvelope {
    /// The customer socket's message types, with their fields checked.
    enum Kind: Equatable {
        case auth(id: String?, token: String)
        case subscribe(id: String?, room: String, since: RoomResume.Since?)
        case unsubscribe(id: String?, room: String)
        case ping(id: String?)
        case unknown(id: String?, type: String)

        var id: String? {
            switch self {
            case .auth(let id, _), .subscribe(let id, _, _), .unsubscribe(let id, _), .ping(let id), .unknown(let id, _): return id
            }
        }
    }

    /// The customer message this envelope carries, or the error reply for a malformed one.
    var customerKind: Result<Kind, ServerMessage> {
        switch type {
        case "auth":
            guard let token, !token.isEmpty else { return .failure(.error(id: id, code: "invalid_message", message: "auth needs a token")) }
            return .success(.auth(id: id, token: token))
        case "subscribe":
            guard let room else { return .failure(.error(id: id, code: "invalid_message", message: "subscribe needs a room")) }
            guard let since else { return .success(.subscribe(id: id, room: room, since: nil)) }
            guard since.offset >= 0, !since.epoch.isEmpty, since.epoch.utf8.count <= 64 else {
                return .failure(.error(id: id, code: "invalid_message", message: "since is {epoch: the epoch you last saw (1-64 characters), offset: the last offset you received (>= 0)}"))
            }
            return .success(.subscribe(id: id, room: room, since: RoomResume.Since(epoch: since.epoch, offset: UInt64(since.offset))))
        case "unsubscribe":
            guard let room else { return .failure(.error(id: id, code: "invalid_message", message: "unsubscribe needs a room")) }
            return .success(.unsubscribe(id: id, room: room))
        case "ping":
            return .success(.ping(id: id))
        default:
            return .success(.unknown(id: id, type: String(type.prefix(64))))
        }
    }
}

/// Room names: `session:<uuid>`, `device:<uuid>`, `org:<uuid>`.
public enum RoomName {
    public enum Kind: String, Sendable { case session, device, org }

    static func parse(_ room: String) -> (kind: Kind, id: UUID)? {
        guard room.utf8.count <= 64, let colon = room.firstIndex(of: ":"),
              let kind = Kind(rawValue: String(room[..<colon])),
              let id = UUID(uuidString: String(room[room.index(after: colon)...])) else { return nil }
        return (kind, id)
    }

    static func isValid(_ room: String) -> Bool { parse(room) != nil }

    /// The room's place among `count` (writer lanes, home loops): stable within the process, so
    /// a room's work always lands in the same place and keeps its order there.
    static func spread(_ room: String, over count: Int) -> Int {
        var hasher = Hasher()
        hasher.combine(room)
        return Int(UInt(bitPattern: hasher.finalize()) % UInt(max(1, count)))
    }

    /// The room's one spelling (`device:<lower-case uuid>`), or nil when it is not a room name:
    /// `device:ABC…` and `device:abc…` are the same room.
    static func canonical(_ room: String) -> String? {
        parse(room).map { "\($0.kind.rawValue):\($0.id.lowercasedString)" }
    }
}
