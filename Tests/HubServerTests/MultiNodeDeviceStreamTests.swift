import Foundation
import HubTestSupport
import XCTest

/// Device streams across two hub processes: a device writes log lines through node B, then
/// reconnects through node A and resends them with one more; a portal on node A sees every line
/// once, in seq order.
final class MultiNodeDeviceStreamTests: XCTestCase {
    func testLinesThroughEitherNodeReachAPortalOnceInOrder() throws {
        let cluster = try MultiNodeRoomTests.Cluster()
        defer { cluster.stop() }
        try cluster.propose(1, through: 0)
        let claim = try cluster.call(1, "POST", "/api/v1/device/commands/claim", bearer: cluster.deviceToken, json: ["max": 1])
        let command = try XCTUnwrap((claim.json?["commands"] as? [[String: Any]])?.first?["id"] as? String, claim.text)

        let portal = try cluster.portal(node: 0, steps: [
            ["send": ["type": "subscribe", "id": "s", "room": cluster.room]], ["recv": 1], ["ready": true], ["recv_for": 4.0],
        ])
        try portal.waitUntilReady()
        func lines(_ seqs: ClosedRange<Int>) -> [[String: Any]] { seqs.map { ["stream": "stdout", "seq": $0, "data": "line \($0)"] } }
        let headers = ["Authorization": "Bearer \(cluster.deviceToken)"]
        let onB = try IdentityTestHub.Session(port: cluster.ports[1], path: "/ws/device", steps: [
            ["send": ["type": "logs", "id": "b", "command_id": command, "lines": lines(1...3)]], ["recv": 1],
        ], headers: headers).finish()
        XCTAssertEqual(onB.received.first?["type"] as? String, "ack", "\(onB.received)")
        let onA = try IdentityTestHub.Session(port: cluster.ports[0], path: "/ws/device", steps: [
            ["send": ["type": "logs", "id": "a", "command_id": command, "lines": lines(1...4)]], ["recv": 1],
        ], headers: headers).finish()
        XCTAssertEqual(onA.received.first?["type"] as? String, "ack", "\(onA.received)")

        let got = try portal.finish()
        let seen = got.received.filter { $0["event"] as? String == "execution.log" }.map { ($0["data"] as? [String: Any])?["seq"] as? Int }
        XCTAssertEqual(seen, [1, 2, 3, 4], "every line once, in order, across nodes: \(got.received)")
    }
}
