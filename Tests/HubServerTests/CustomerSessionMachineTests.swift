import Foundation
import HubAuth
import XCTest
@testable import HubServer

/// The `/ws/customer` session logic without sockets: auth by header or first message within
/// the deadline, refresh, expiry, room authorization and its re-check on refresh.
final class CustomerSessionMachineTests: XCTestCase {
    let alice = UserPrincipal(userID: UUID(), roles: [:], expiresAt: 1_000)
    let room = "org:\(UUID().uuidString.lowercased())"

    func testHeaderAuthOpensAuthenticatedAndSchedulesExpiry() {
        var m = CustomerSessionMachine(maxRooms: 2)
        XCTAssertEqual(m.handle(.opened(preauthenticated: alice)), [.cancelAuthDeadline, .scheduleExpiry(atUnixSeconds: 1_000)])
        XCTAssertEqual(m.state, .authenticated(alice))
        XCTAssertEqual(m.handle(.authDeadlinePassed), [], "the deadline no longer applies")
    }

    func testFirstMessageAuth() {
        var m = CustomerSessionMachine(maxRooms: 2)
        XCTAssertEqual(m.handle(.opened(preauthenticated: nil)), [])
        XCTAssertEqual(m.handle(.message(.auth(id: "1", token: "t"))), [.verify(token: "t", id: "1")])
        XCTAssertEqual(m.handle(.message(.ping(id: "2"))), [.send(.error(id: "2", code: "unauthenticated", message: "wait for the auth reply"))])
        XCTAssertEqual(m.handle(.verified(id: "1", alice)),
                       [.cancelAuthDeadline, .scheduleExpiry(atUnixSeconds: 1_000), .send(.ack(id: "1", fields: ["expires_at": .int(1_000)]))])
        XCTAssertEqual(m.handle(.message(.ping(id: "3"))), [.send(.ack(id: "3", fields: [:]))])
    }

    func testNoAuthWithinTheDeadlineCloses() {
        var m = CustomerSessionMachine(maxRooms: 2)
        _ = m.handle(.opened(preauthenticated: nil))
        XCTAssertEqual(m.handle(.authDeadlinePassed), [.close(code: 4500, reason: "auth_failed: no valid auth message within the deadline")])
        XCTAssertEqual(m.state, .closed)
        XCTAssertEqual(m.handle(.message(.ping(id: nil))), [], "nothing after close")
    }

    func testAnotherFirstMessageOrABadTokenCloses() {
        var m = CustomerSessionMachine(maxRooms: 2)
        let actions = m.handle(.message(.subscribe(id: "s", room: room, since: nil)))
        XCTAssertEqual(actions.last, .close(code: 4500, reason: "auth_failed: the first message must be auth"))
        var n = CustomerSessionMachine(maxRooms: 2)
        _ = n.handle(.message(.auth(id: "a", token: "bad")))
        XCTAssertEqual(n.handle(.verificationFailed(id: "a", detail: "expired")),
                       [.send(.error(id: "a", code: "unauthenticated", message: "expired")), .close(code: 4500, reason: "auth_failed")])
    }

    func testExpiryClosesWithTokenExpiredUnlessRefreshed() {
        var m = CustomerSessionMachine(maxRooms: 2)
        _ = m.handle(.opened(preauthenticated: alice))
        // Refreshed before the timer fired: the timer finds a later exp and re-arms.
        var refreshed = alice
        refreshed.expiresAt = 2_000
        XCTAssertEqual(m.handle(.message(.auth(id: "r", token: "new"))), [.verify(token: "new", id: "r")])
        XCTAssertEqual(m.handle(.verified(id: "r", refreshed)), [.scheduleExpiry(atUnixSeconds: 2_000), .send(.ack(id: "r", fields: ["expires_at": .int(2_000)]))])
        XCTAssertEqual(m.handle(.expiryTimer(now: 1_000)), [.scheduleExpiry(atUnixSeconds: 2_000)])
        XCTAssertEqual(m.handle(.expiryTimer(now: 2_000)), [.close(code: 4001, reason: "token_expired")])
    }

    func testAFailedRefreshKeepsTheSessionAndARefreshForAnotherUserCloses() {
        var m = CustomerSessionMachine(maxRooms: 2)
        _ = m.handle(.opened(preauthenticated: alice))
        _ = m.handle(.message(.auth(id: "r", token: "bad")))
        XCTAssertEqual(m.handle(.verificationFailed(id: "r", detail: "bad signature")), [.send(.error(id: "r", code: "unauthenticated", message: "bad signature"))])
        XCTAssertEqual(m.state, .authenticated(alice))
        let mallory = UserPrincipal(userID: UUID(), roles: [:], expiresAt: 5_000)
        _ = m.handle(.message(.auth(id: "x", token: "mallory")))
        XCTAssertEqual(m.handle(.verified(id: "x", mallory)).last, .close(code: 4500, reason: "auth_failed: user changed"))
    }

    func testRoomsAreAuthorizedCappedAndRecheckedOnRefresh() {
        var m = CustomerSessionMachine(maxRooms: 2)
        _ = m.handle(.opened(preauthenticated: alice))
        XCTAssertEqual(m.handle(.message(.subscribe(id: "1", room: "bogus", since: nil))).first,
                       .send(.error(id: "1", code: "invalid_argument", message: "rooms are session:<uuid>, device:<uuid> or org:<uuid>")))
        XCTAssertEqual(m.handle(.message(.subscribe(id: "2", room: room, since: nil))), [.checkRoom(room: room, user: alice, id: "2", recheck: false)])
        XCTAssertEqual(m.handle(.roomChecked(id: "2", room: room, allowed: true, recheck: false)), [.join(room: room, since: nil, id: "2")])
        XCTAssertEqual(m.rooms, [], "a member once the join answered")
        XCTAssertEqual(m.handle(.joined(id: "2", room: room, epoch: "e1", offset: 7, recovered: false)),
                       [.send(.ack(id: "2", fields: ["room": .string(room), "epoch": .string("e1"), "offset": .int(7), "recovered": .bool(false)])),
                        .activate(room: room)])
        XCTAssertEqual(m.handle(.message(.subscribe(id: "2b", room: room, since: nil))),
                       [.send(.ack(id: "2b", fields: ["room": .string(room)]))], "subscribing twice is harmless")
        let foreign = "device:\(UUID().uuidString.lowercased())"
        _ = m.handle(.message(.subscribe(id: "3", room: foreign, since: nil)))
        XCTAssertEqual(m.handle(.roomChecked(id: "3", room: foreign, allowed: false, recheck: false)),
                       [.send(.error(id: "3", code: "not_found", message: "no such room"))], "a foreign room reads like a missing one")
        let second = "session:\(UUID().uuidString.lowercased())", third = "session:\(UUID().uuidString.lowercased())"
        _ = m.handle(.message(.subscribe(id: "4", room: second, since: nil)))
        _ = m.handle(.roomChecked(id: "4", room: second, allowed: true, recheck: false))
        _ = m.handle(.joined(id: "4", room: second, epoch: "e2", offset: 0, recovered: false))
        XCTAssertEqual(m.handle(.message(.subscribe(id: "5", room: third, since: nil))), [.send(.error(id: "5", code: "too_many_rooms", message: "at most 2 rooms per connection"))])
        XCTAssertEqual(m.rooms, [room, second])

        // Refresh: both rooms are checked again; the one no longer allowed is dropped.
        var refreshed = alice
        refreshed.expiresAt = 3_000
        _ = m.handle(.message(.auth(id: "r", token: "new")))
        let actions = m.handle(.verified(id: "r", refreshed))
        XCTAssertEqual(actions.filter { if case .checkRoom = $0 { return true }; return false }.count, 2)
        XCTAssertEqual(m.handle(.roomChecked(id: nil, room: second, allowed: false, recheck: true)),
                       [.send(.unsubscribed(room: second, reason: "not_found")), .leave(room: second)], "and its events stop")
        XCTAssertEqual(m.handle(.roomChecked(id: nil, room: room, allowed: true, recheck: true)), [])
        XCTAssertEqual(m.rooms, [room])
    }

    func testUnsubscribeWhileTheCheckRunsWithdrawsTheSubscription() {
        var m = CustomerSessionMachine(maxRooms: 2)
        _ = m.handle(.opened(preauthenticated: alice))
        let upper = room.uppercased().replacingOccurrences(of: "ORG:", with: "org:")
        XCTAssertEqual(m.handle(.message(.subscribe(id: "1", room: upper, since: nil))), [.checkRoom(room: room, user: alice, id: "1", recheck: false)],
                       "room names are canonical (lower-case ids)")
        XCTAssertEqual(m.handle(.message(.unsubscribe(id: "2", room: room))), [.leave(room: room), .send(.ack(id: "2", fields: ["room": .string(room)]))])
        XCTAssertEqual(m.handle(.roomChecked(id: "1", room: room, allowed: true, recheck: false)), [])
        XCTAssertEqual(m.rooms, [])
        // Unsubscribed while the join ran: the join's membership is left again, no ack.
        _ = m.handle(.message(.subscribe(id: "4", room: room, since: RoomResume.Since(epoch: "e", offset: 3))))
        XCTAssertEqual(m.handle(.roomChecked(id: "4", room: room, allowed: true, recheck: false)),
                       [.join(room: room, since: RoomResume.Since(epoch: "e", offset: 3), id: "4")], "since travels with the join")
        _ = m.handle(.message(.unsubscribe(id: "5", room: room)))
        XCTAssertEqual(m.handle(.joined(id: "4", room: room, epoch: "e", offset: 9, recovered: true)), [.leave(room: room)])
        XCTAssertEqual(m.rooms, [])
        XCTAssertEqual(m.handle(.message(.unsubscribe(id: "3", room: "nonsense"))).first,
                       .send(.error(id: "3", code: "invalid_argument", message: "rooms are session:<uuid>, device:<uuid> or org:<uuid>")))
    }

    func testStoreOutagesAreNotAuthFailures() {
        var m = CustomerSessionMachine(maxRooms: 2)
        _ = m.handle(.message(.auth(id: "a", token: "t")))
        XCTAssertEqual(m.handle(.verificationUnavailable(id: "a")),
                       [.send(.error(id: "a", code: "unavailable", message: "could not check the token; retry shortly"))])
        XCTAssertEqual(m.state, .awaitingAuth, "the client may retry within the deadline")
        XCTAssertEqual(m.handle(.message(.auth(id: "b", token: "t"))), [.verify(token: "t", id: "b")])
        _ = m.handle(.verified(id: "b", alice))
        _ = m.handle(.message(.subscribe(id: "s", room: room, since: nil)))
        XCTAssertEqual(m.handle(.roomCheckUnavailable(id: "s", room: room)),
                       [.send(.error(id: "s", code: "unavailable", message: "could not subscribe to the room; retry shortly"))])
        _ = m.handle(.message(.subscribe(id: "t", room: room, since: nil)))
        _ = m.handle(.roomChecked(id: "t", room: room, allowed: true, recheck: false))
        XCTAssertEqual(m.handle(.joinFailed(id: "t", room: room)),
                       [.send(.error(id: "t", code: "unavailable", message: "could not subscribe to the room; retry shortly"))])
        XCTAssertEqual(m.rooms, [])
        XCTAssertEqual(m.handle(.invalidMessage(.error(id: nil, code: "invalid_message", message: "x"))),
                       [.send(.error(id: nil, code: "invalid_message", message: "x"))], "authenticated: a bad message is only answered")
    }

    func testEnvelopeParsing() {
        func parse(_ s: String) -> Result<ClientEnvelope, ServerMessage> {
            var s = s
            return s.withUTF8 { ClientEnvelope.parse(UnsafeRawBufferPointer($0)) }
        }
        guard case .success(let e) = parse(#"{"type":"auth","id":"7","token":"abc"}"#) else { return XCTFail() }
        XCTAssertEqual(try e.customerKind.get(), .auth(id: "7", token: "abc"))
        guard case .failure(let bad) = parse("[1,2]") else { return XCTFail() }
        XCTAssertEqual(bad, .error(id: nil, code: "invalid_message", message: "expected a JSON object with a string \"type\""))
        guard case .failure(let long) = parse(#"{"type":"ping","id":"\#(String(repeating: "x", count: 129))"}"#) else { return XCTFail() }
        if case .error(_, let code, _, _) = long { XCTAssertEqual(code, "invalid_message") }
        guard case .failure(let big) = parse(#"{"type":"ping","pad":"\#(String(repeating: "x", count: 70_000))"}"#) else { return XCTFail() }
        if case .error(_, let code, _, _) = big { XCTAssertEqual(code, "message_too_large") }
        guard case .success(let noToken) = parse(#"{"type":"auth"}"#) else { return XCTFail() }
        XCTAssertThrowsError(try noToken.customerKind.get())
    }
}
