import Foundation
import XCTest

/// Presence on one node: a socket's heartbeat that finds the presence held by another node
/// (whose `replace` message was lost) closes as replaced and leaves that node's presence alone.
final class DevicePresenceTests: XCTestCase {
    func testAHeartbeatThatFindsAnotherNodesPresenceClosesAsReplaced() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        let key = "presence:" + f.device.uuidString.lowercased()
        let ws = try hub.socket("/ws/device", steps: [
            ["send": ["type": "heartbeat", "id": "h1"]], ["recv": 1], ["ready": true],
            ["sleep": 1.0],
            ["send": ["type": "heartbeat", "id": "h2"]], ["wait_close": 10],
        ], bearer: f.deviceToken)
        try ws.waitUntilReady()
        let mine = try await hub.stores.keyValue.get(key)
        XCTAssertEqual(mine.map { String(decoding: $0, as: UTF8.self) }, hub.server.config.nodeID, "the socket's node holds the presence")
        // A newer socket of the device opened on another node, and its replace was lost.
        try await hub.stores.keyValue.set(key, Array("node-elsewhere".utf8), ttl: .seconds(60))
        let got = try ws.finish()
        XCTAssertEqual(got.closeCode, 4509, "\(got)")
        try await Task.sleep(for: .milliseconds(300))
        let after = try await hub.stores.keyValue.get(key)
        XCTAssertEqual(after.map { String(decoding: $0, as: UTF8.self) }, "node-elsewhere", "the replaced socket leaves the presence alone")
    }
}
