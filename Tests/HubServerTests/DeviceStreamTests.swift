import Foundation
import HubStore
import XCTest

/// Device streams: log lines over `/ws/device` and `POST /api/v1/device/commands/{id}/logs`
/// become `execution.log` events in the session's room history, in seq order and never twice
/// (also after a reconnect, also when the REST fallback resends); lines for a command the
/// device does not hold are refused; the limits hold; `status` and connect/disconnect become
/// `device.status` in the device's room. Every reply the hub sends is validated against
/// protocol/ws by the Python peer.
final class DeviceStreamTests: XCTestCase {
    func testLogLinesAndStatusEmbedded() async throws { try await logLinesAndStatus(.embedded) }
    func testLogLinesAndStatusRedisPostgres() async throws { try await logLinesAndStatus(.redisPostgres) }
    func testLogLinesAndStatusRedisCluster() async throws { try await logLinesAndStatus(.redisCluster) }

    private func logLinesAndStatus(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        let id = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        let queued = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        let lease = try XCTUnwrap(try f.claim().first)
        XCTAssertEqual(lease["id"] as? String, id)
        let token = try XCTUnwrap(lease["lease_token"] as? String)
        // A command another device holds.
        let other = try QueueFixture(hub, name: "Other")
        try other.autoApprove(["job"])
        let foreign = try XCTUnwrap(try other.propose(try other.activeSession(), "job")["id"] as? String)
        XCTAssertEqual(try other.claim().first?["id"] as? String, foreign)

        func log(_ mid: String?, _ command: String, _ seq: Any, _ data: String, stream: String = "stdout") -> [String: Any] {
            var m: [String: Any] = ["type": "log", "command_id": command, "stream": stream, "seq": seq, "data": data]
            if let mid { m["id"] = mid }
            return m
        }
        let tooMany = (1...101).map { ["stream": "stdout", "seq": $0, "data": "x"] as [String: Any] }
        let ws = try hub.socket("/ws/device", steps: [
            ["send": log("l1", id, 1, "one")], ["recv": 1],
            ["send": ["type": "logs", "id": "l2", "command_id": id, "lines": [
                ["stream": "stderr", "seq": 2, "data": "two"], ["stream": "stdout", "seq": 3, "data": "three \"quoted\"\n"],
            ]]], ["recv": 1],
            // No id: no ack (only errors are answered).
            ["send": log(nil, id, 4, "four")],
            ["send": ["type": "ping", "id": "p"]], ["recv": 1],
            ["send": log("foreign", foreign, 1, "not mine")], ["recv": 1],
            ["send": log("queued", queued, 1, "not claimed")], ["recv": 1],
            ["send": log("big", id, 9, String(repeating: "x", count: 16 * 1024 + 1))], ["recv": 1],
            ["send": log("seq0", id, 0, "zero")], ["recv": 1],
            ["send": log("stdin", id, 9, "x", stream: "stdin")], ["recv": 1],
            ["send": log("type", id, "9", "x")], ["recv": 1],
            ["send": ["type": "logs", "id": "many", "command_id": id, "lines": tooMany]], ["recv": 1],
            ["send": ["type": "logs", "id": "none", "command_id": id, "lines": [] as [Any]]], ["recv": 1],
            ["send": ["type": "status", "id": "s", "status": ["battery": 80, "fw": "1.2"]]], ["recv": 1],
            ["send": ["type": "status", "id": "s2", "status": "charging"]], ["recv": 1],
            ["send": ["type": "status", "id": "s3", "status": ["pad": String(repeating: "x", count: 2100)]]], ["recv": 1],
        ], bearer: f.deviceToken)
        let got = try ws.finish()
        XCTAssertNil(got.error, "\(got)")
        let byID = Dictionary(got.received.compactMap { m in (m["id"] as? String).map { ($0, m) } }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byID["l1"]?["type"] as? String, "ack", "\(got.received)")
        XCTAssertEqual(byID["l2"]?["type"] as? String, "ack")
        XCTAssertEqual(byID["p"]?["type"] as? String, "ack")
        XCTAssertEqual(byID["foreign"]?["code"] as? String, "not_found", "another device's command looks missing")
        XCTAssertEqual(byID["queued"]?["code"] as? String, "lease_conflict")
        XCTAssertEqual(byID["queued"]?["state"] as? String, "queued")
        for limit in ["big", "seq0", "stdin", "many", "none", "s2", "s3"] {
            XCTAssertEqual(byID[limit]?["code"] as? String, "invalid_argument", "\(limit): \(byID[limit] ?? [:])")
        }
        XCTAssertEqual(byID["type"]?["code"] as? String, "invalid_message")
        XCTAssertEqual(byID["s"]?["type"] as? String, "ack")
        XCTAssertEqual(got.received.count, 14, "one reply per message with an id, none for the log without: \(got.received)")

        // Reconnect and resend everything, plus one new line.
        let again = try hub.socket("/ws/device", steps: [
            ["send": ["type": "logs", "id": "r", "command_id": id, "lines": [
                ["stream": "stdout", "seq": 1, "data": "one"], ["stream": "stderr", "seq": 2, "data": "two"],
                ["stream": "stdout", "seq": 3, "data": "three \"quoted\"\n"], ["stream": "stdout", "seq": 4, "data": "four"],
            ]]], ["recv": 1],
            ["send": log("l5", id, 5, "five")], ["recv": 1],
        ], bearer: f.deviceToken)
        let second = try again.finish()
        XCTAssertEqual(second.received.map { $0["type"] as? String }, ["ack", "ack"], "\(second.received)")

        // The REST fallback: the same dedupe.
        let path = "/api/v1/device/commands/\(id)/logs"
        let rest = try hub.expect(200, "POST", path, bearer: f.deviceToken, json: ["lease_token": token, "lines": [
            ["stream": "stdout", "seq": 4, "data": "four"], ["stream": "stdout", "seq": 5, "data": "five"],
            ["stream": "stdout", "seq": 7, "data": "seven"], ["stream": "stdout", "seq": 6, "data": "six"],
        ]])
        XCTAssertEqual(rest["accepted"] as? Int, 2)
        XCTAssertEqual(rest["duplicates"] as? Int, 2)
        let noToken = try hub.expect(200, "POST", path, bearer: f.deviceToken, json: ["lines": [["stream": "stdout", "seq": 7, "data": "seven"]]])
        XCTAssertEqual(noToken["accepted"] as? Int, 0)
        XCTAssertEqual(noToken["duplicates"] as? Int, 1)
        let stale = try hub.expect(409, "POST", path, bearer: f.deviceToken, json: ["lease_token": UUID().uuidString, "lines": [["stream": "stdout", "seq": 8, "data": "x"]]])
        XCTAssertEqual(stale["code"] as? String, "lease_conflict")
        let notMine = try hub.expect(404, "POST", "/api/v1/device/commands/\(foreign)/logs", bearer: f.deviceToken,
                                     json: ["lines": [["stream": "stdout", "seq": 1, "data": "x"]]])
        XCTAssertEqual(notMine["code"] as? String, "not_found")
        try hub.expect(400, "POST", path, bearer: f.deviceToken, json: ["lines": tooMany])
        try hub.expect(400, "POST", path, bearer: f.deviceToken, json: ["lines": [["stream": "stdout", "seq": 8, "data": String(repeating: "y", count: 16 * 1024 + 1)]]])
        try hub.expect(400, "POST", path, bearer: f.deviceToken, json: ["lines": [["stream": "stdin", "seq": 8, "data": "x"]]])

        // The session's room history: every line once, in seq order.
        let room = "session:" + session.lowercased()
        var lines: [[String: Any]] = []
        let complete = try await QueueFixture.eventuallyAsync {
            lines = try await Self.roomEvents(hub, room).filter { $0["event"] as? String == "execution.log" }.compactMap { $0["data"] as? [String: Any] }
            return lines.contains { $0["seq"] as? Int == 7 }
        }
        XCTAssertTrue(complete, "\(lines)")
        XCTAssertEqual(lines.map { $0["seq"] as? Int }, [1, 2, 3, 4, 5, 6, 7], "in order, no duplicates: \(lines)")
        XCTAssertEqual(lines.map { $0["data"] as? String }, ["one", "two", "three \"quoted\"\n", "four", "five", "six", "seven"])
        XCTAssertEqual(lines.map { $0["stream"] as? String }, ["stdout", "stderr", "stdout", "stdout", "stdout", "stdout", "stdout"])
        XCTAssertTrue(lines.allSatisfy { $0["command_id"] as? String == id.lowercased() && $0["session_id"] as? String == session.lowercased() })
        // The lines are stored too (the record of what ran).
        let stored = try await hub.stores.records.logLines(commandID: UUID(uuidString: id)!, afterSeq: 0, limit: 100)
        XCTAssertEqual(stored.map(\.seq), [1, 2, 3, 4, 5, 6, 7])

        // device.status in the device's room (and the org's): online on connect with the node,
        // the reported status, offline on disconnect.
        let deviceRoom = "device:" + f.device.uuidString.lowercased()
        var statuses: [[String: Any]] = []
        let offline = try await QueueFixture.eventuallyAsync {
            statuses = try await Self.roomEvents(hub, deviceRoom).filter { $0["event"] as? String == "device.status" }.compactMap { $0["data"] as? [String: Any] }
            return statuses.filter { $0["online"] as? Bool == false }.count >= 2
        }
        XCTAssertTrue(offline, "both sockets' disconnects: \(statuses)")
        XCTAssertEqual(statuses.first?["online"] as? Bool, true)
        XCTAssertEqual(statuses.first?["node"] as? String, hub.server.config.nodeID)
        XCTAssertEqual(statuses.first?["org_id"] as? String, f.org.uuidString.lowercased())
        let reported = statuses.compactMap { $0["status"] as? [String: Any] }
        XCTAssertEqual(reported.count, 1, "\(statuses)")
        XCTAssertEqual(reported.first?["battery"] as? Int, 80)
        let orgEvents = try await Self.roomEvents(hub, "org:" + f.org.uuidString.lowercased()).filter { $0["event"] as? String == "device.status" }
        XCTAssertEqual(orgEvents.count, statuses.count, "device.status goes to the org's room too")
    }

    /// A command that ended takes no more lines (the socket re-reads a command it found held
    /// once its result went through the socket).
    func testLinesAfterTheResultAreRefused() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let id = try XCTUnwrap(try f.propose(try f.activeSession(), "job")["id"] as? String)
        let token = try XCTUnwrap(try f.claim().first?["lease_token"] as? String)
        let ws = try hub.socket("/ws/device", steps: [
            ["send": ["type": "log", "id": "a", "command_id": id, "stream": "stdout", "seq": 1, "data": "a"]], ["recv": 1],
            ["send": ["type": "result", "id": "r", "command_id": id, "lease_token": token, "status": "succeeded"]], ["recv": 1],
            ["send": ["type": "log", "id": "b", "command_id": id, "stream": "stdout", "seq": 2, "data": "b"]], ["recv": 1],
        ], bearer: f.deviceToken)
        let got = try ws.finish()
        let byID = Dictionary(got.received.compactMap { m in (m["id"] as? String).map { ($0, m) } }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byID["a"]?["type"] as? String, "ack")
        XCTAssertEqual(byID["r"]?["state"] as? String, "succeeded")
        XCTAssertEqual(byID["b"]?["code"] as? String, "lease_conflict", "\(got.received)")
        XCTAssertEqual(byID["b"]?["state"] as? String, "succeeded")
        try hub.expect(409, "POST", "/api/v1/device/commands/\(id)/logs", bearer: f.deviceToken, json: ["lines": [["stream": "stdout", "seq": 3, "data": "c"]]])
    }

    /// A portal watching the session and the device sees the lines and the device's status live,
    /// as `event` frames (validated against protocol/ws), lines in seq order.
    func testAPortalWatchesLinesAndDeviceStatusLive() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        let id = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        XCTAssertEqual(try f.claim().first?["id"] as? String, id)
        let sessionRoom = "session:" + session.lowercased(), deviceRoom = "device:" + f.device.uuidString.lowercased()
        let portal = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "subscribe", "id": "a", "room": sessionRoom]], ["recv": 1],
            ["send": ["type": "subscribe", "id": "b", "room": deviceRoom]], ["recv": 1],
            ["ready": true], ["recv_for": 3.0],
        ], bearer: f.vw)
        try portal.waitUntilReady()
        let device = try hub.socket("/ws/device", steps: [
            ["send": ["type": "logs", "id": "l", "command_id": id, "lines": [
                ["stream": "stdout", "seq": 1, "data": "a"], ["stream": "stdout", "seq": 3, "data": "c"], ["stream": "stderr", "seq": 2, "data": "b"],
            ]]], ["recv": 1],
            ["send": ["type": "log", "id": "again", "command_id": id, "stream": "stdout", "seq": 2, "data": "b"]], ["recv": 1],
            ["send": ["type": "status", "id": "s", "status": ["temp": 41]]], ["recv": 1],
        ], bearer: f.deviceToken).finish()
        XCTAssertEqual(device.received.map { $0["type"] as? String }, ["ack", "ack", "ack"], "\(device.received)")
        let got = try portal.finish()
        let events = got.received.filter { $0["type"] as? String == "event" }
        let lines = events.filter { $0["room"] as? String == sessionRoom && $0["event"] as? String == "execution.log" }
        XCTAssertEqual(lines.map { ($0["data"] as? [String: Any])?["seq"] as? Int }, [1, 2, 3], "\(got.received)")
        let statuses = events.filter { $0["room"] as? String == deviceRoom && $0["event"] as? String == "device.status" }.compactMap { $0["data"] as? [String: Any] }
        XCTAssertEqual(statuses.map { $0["online"] as? Bool }, [true, true, false], "connect, status, disconnect: \(statuses)")
        XCTAssertEqual((statuses.dropFirst().first?["status"] as? [String: Any])?["temp"] as? Int, 41)
    }

    /// A room's history entries, oldest first, as JSON objects.
    static func roomEvents(_ hub: IdentityTestHub, _ room: String) async throws -> [[String: Any]] {
        let read = try await hub.stores.streams.read("room:" + room, after: 0, limit: 1000)
        return read.entries.compactMap { try? JSONSerialization.jsonObject(with: Data($0.payload)) as? [String: Any] }
    }
}
