import Foundation
import HubStore
import XCTest
@testable import HubServer

/// `/ws/customer` rooms end to end, on both backends, with python-websockets as the portal:
/// live events in offset order and equal to the room's history; resume with `since` replaying
/// exactly the missed events or refusing (`recovered: false`) on another epoch or a gap older
/// than the history; a foreign room answered like a missing one.
final class RoomEndToEndTests: XCTestCase {
    func testLiveResumeAndRefusalEmbedded() async throws { try await liveResumeAndRefusal(.embedded) }
    func testLiveResumeAndRefusalRedisPostgres() async throws { try await liveResumeAndRefusal(.redisPostgres) }
    func testLiveResumeAndRefusalRedisCluster() async throws { try await liveResumeAndRefusal(.redisCluster) }

    private func liveResumeAndRefusal(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend) { $0.roomHistoryLength = 12 }
        defer { hub.stop() }
        let f = try QueueFixture(hub, name: "Rooms")
        try f.autoApprove(["uptime"])
        let session = try f.activeSession()
        let room = "session:\(session)"

        // Live: subscribe, then five proposals; the portal gets every event after its ack.
        let live = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "subscribe", "id": "s", "room": room]], ["recv": 1], ["ready": true], ["recv_for": 2.0],
        ], bearer: f.vw)
        try live.waitUntilReady()
        for _ in 0..<5 { try f.propose(session, "uptime") }
        let got = try live.finish()
        let ack = try XCTUnwrap(got.received.first)
        XCTAssertEqual(ack["type"] as? String, "ack", "\(got.received)")
        XCTAssertEqual(ack["room"] as? String, room)
        XCTAssertEqual(ack["recovered"] as? Bool, false, "no since: nothing to recover")
        let epoch = try XCTUnwrap(ack["epoch"] as? String)
        let start = try XCTUnwrap(ack["offset"] as? Int)
        XCTAssertEqual(start, 2, "the session's two status events were in the history before the subscription")
        let history = try await roomHistory(hub, room)
        let events = got.received.dropFirst()
        XCTAssertEqual(events.map { $0["offset"] as? Int }, history.filter { $0.offset > start }.map { $0.offset },
                       "every event after the ack, in offset order, none twice: \(got.received)")
        XCTAssertGreaterThanOrEqual(events.count, 5)
        for (frame, stored) in zip(events, history.filter { $0.offset > start }) {
            XCTAssertEqual(frame["type"] as? String, "event")
            XCTAssertEqual(frame["room"] as? String, room)
            XCTAssertEqual(frame["epoch"] as? String, epoch)
            XCTAssertEqual(frame["event"] as? String, stored.json["event"] as? String)
            XCTAssertEqual(frame["data"] as? NSDictionary, stored.json["data"] as? NSDictionary)
            XCTAssertEqual(frame["at"] as? String, stored.json["at"] as? String)
        }
        let latest = try XCTUnwrap(history.last?.offset)

        // Resume from an event in the middle: exactly the ones after it, then the ack's offset.
        let from = latest - 3
        let resumed = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "subscribe", "id": "r", "room": room, "since": ["epoch": epoch, "offset": from]]], ["recv": 4],
        ], bearer: f.vw).finish()
        XCTAssertEqual(resumed.received.first?["recovered"] as? Bool, true, "\(resumed.received)")
        XCTAssertEqual(resumed.received.first?["offset"] as? Int, latest)
        XCTAssertEqual(resumed.received.dropFirst().map { $0["offset"] as? Int }, [from + 1, from + 2, from + 3])
        // Up to date: recovered, nothing replayed.
        let current = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "subscribe", "id": "u", "room": room, "since": ["epoch": epoch, "offset": latest]]], ["recv": 1], ["recv_for": 0.5],
        ], bearer: f.vw).finish()
        XCTAssertEqual(current.received.count, 1, "\(current.received)")
        XCTAssertEqual(current.received.first?["recovered"] as? Bool, true)

        // Another epoch, a gap older than the history (12 kept), or a position ahead of the
        // room: nothing replayed, recovered false, the room's own epoch and offset.
        for _ in 0..<10 { try f.propose(session, "uptime") }
        let newest = try await QueueFixture.eventuallyAsync { try await self.roomHistory(hub, room).last?.offset ?? 0 >= latest + 10 }
        XCTAssertTrue(newest)
        let kept = try await roomHistory(hub, room)
        XCTAssertEqual(kept.count, 12, "the history keeps --room-history-length events")
        for since in [["epoch": "0000000000000000", "offset": latest], ["epoch": epoch, "offset": 1], ["epoch": epoch, "offset": 10_000]] as [[String: Any]] {
            let refused = try hub.socket("/ws/customer", steps: [
                ["send": ["type": "subscribe", "id": "x", "room": room, "since": since]], ["recv": 1], ["recv_for": 0.5],
            ], bearer: f.vw).finish()
            XCTAssertEqual(refused.received.count, 1, "never a partial replay: \(since) \(refused.received)")
            XCTAssertEqual(refused.received.first?["recovered"] as? Bool, false, "\(since)")
            XCTAssertEqual(refused.received.first?["epoch"] as? String, epoch)
            XCTAssertEqual(refused.received.first?["offset"] as? Int, kept.last?.offset)
        }

        // A room of another org reads exactly like a room that does not exist.
        let other = try QueueFixture(hub, name: "Other")
        let foreign = try other.activeSession()
        let answers = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "subscribe", "id": "1", "room": "session:\(foreign)"]], ["recv": 1],
            ["send": ["type": "subscribe", "id": "1", "room": "session:\(UUID().uuidString.lowercased())"]], ["recv": 1],
        ], bearer: f.vw).finish()
        XCTAssertEqual(answers.received.count, 2)
        XCTAssertEqual(answers.received[0] as NSDictionary, answers.received[1] as NSDictionary, "\(answers.received)")
        XCTAssertEqual(answers.received[0]["code"] as? String, "not_found")
    }

    /// The room's history as stored: offsets and entries.
    func roomHistory(_ hub: IdentityTestHub, _ room: String) async throws -> [(offset: Int, json: [String: Any])] {
        let read = try await hub.stores.streams.read(RoomHistory.stream(room), after: 0, limit: 1000)
        return try read.entries.map { (Int($0.offset), try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.payload)) as? [String: Any])) }
    }
}
