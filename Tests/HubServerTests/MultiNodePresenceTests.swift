import Foundation
import HubTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Presence across two hub processes on one Redis and one PostgreSQL: a device that connects
/// again through the other node keeps the newer socket (the older closes with 4509 `replaced`
/// and does not mark the device offline), and a node killed with SIGKILL has its devices
/// offline within the presence TTL, as the device list's `online` filter shows.
final class MultiNodePresenceTests: XCTestCase {
    func testReplacedAcrossNodesAndOfflineWithinTheTTLAfterAKill() async throws {
        let redis = try RedisTestServer.startPrivate()
        defer { redis.stop() }
        let postgres = try PostgresTestServer.start()
        defer { postgres.stop() }
        let ttl = 3.0
        let args = ["--host", "127.0.0.1", "--port", "0", "--loops", "2", "--redis-url", redis.url, "--postgres-url", postgres.url,
                    "--hash-key", testHashKey, "--admin-token", IdentityTestHub.adminToken,
                    "--supabase-jwt-secret", IdentityTestHub.jwtSecret, "--supabase-url", IdentityTestHub.supabaseURL]
        let nodeA = try HubProcess(arguments: args + ["--node-id", "node-a", "--presence-ttl", String(ttl)])
        // Node B takes the TTL from the environment, as an operator may.
        let nodeB = try HubProcess(arguments: args + ["--node-id", "node-b"], environment: ["DEVICEHUB_PRESENCE_TTL": String(ttl)])
        defer { nodeA.signal(SIGKILL); nodeB.signal(SIGKILL) }
        let portA = try nodeA.waitUntilListening(), portB = try nodeB.waitUntilListening()
        for port in [portA, portB] {
            let deadline = Date().addingTimeInterval(20)
            while (try? TestClient(port: port).request("GET", "/readyz").status) != 200, Date() < deadline { usleep(50_000) }
        }

        func call(_ port: Int, _ method: String, _ path: String, bearer: String? = nil, json: [String: Any]? = nil) throws -> TestClient.Response {
            var headers: [String: String] = [:]
            if let bearer { headers["Authorization"] = "Bearer \(bearer)" }
            var body: String?
            if let json { headers["Content-Type"] = "application/json"; body = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self) }
            return try TestClient(port: port).request(method, path, headers: headers, body: body)
        }
        let user = UUID()
        let org = try XCTUnwrap(try call(portA, "POST", "/api/v1/admin/orgs", bearer: IdentityTestHub.adminToken, json: ["name": "Fleet"]).json?["id"] as? String)
        XCTAssertEqual(try call(portA, "POST", "/api/v1/admin/orgs/\(org)/members", bearer: IdentityTestHub.adminToken,
                                json: ["user_id": user.uuidString, "role": "operator"]).status, 201)
        let jwt = IdentityTestHub.jwt(user)
        let code = try XCTUnwrap(try call(portA, "POST", "/api/v1/customer/devices/provision", bearer: jwt, json: ["org_id": org, "name": "d"]).json?["activation_code"] as? String)
        let reg = try call(portA, "POST", "/api/v1/device/register", json: ["activation_code": code])
        let deviceID = try XCTUnwrap(reg.json?["device_id"] as? String), secret = try XCTUnwrap(reg.json?["device_secret"] as? String)
        let token = try XCTUnwrap(try call(portA, "POST", "/api/v1/device/auth", json: ["device_id": deviceID, "device_secret": secret]).json?["token"] as? String)

        /// The node the presence names (nil: offline), read from Redis directly.
        func presence() throws -> String? {
            let text = String(decoding: try redis.cli(["--raw", "GET", "dh:kv:presence:" + deviceID.lowercased()]), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : text
        }
        func listedOnline(_ port: Int) throws -> Bool {
            let r = try call(port, "GET", "/api/v1/customer/devices?org_id=\(org)&online=true", bearer: jwt)
            XCTAssertEqual(r.status, 200, r.text)
            return (r.json?["items"] as? [[String: Any]] ?? []).contains { $0["id"] as? String == deviceID.lowercased() }
        }
        let headers = ["Authorization": "Bearer \(token)"]

        // The device connects through node A.
        let first = try IdentityTestHub.Session(port: portA, path: "/ws/device",
                                                steps: [["send": ["type": "heartbeat", "id": "h"]], ["recv": 1], ["ready": true], ["wait_close": 20]],
                                                headers: headers)
        try first.waitUntilReady()
        XCTAssertTrue(try QueueFixture.eventually(timeout: 5) { try presence() == "node-a" }, "presence names node A")

        // Again through node B: node A closes its socket with 4509, presence names node B.
        let second = try IdentityTestHub.Session(port: portB, path: "/ws/device",
                                                 steps: [["send": ["type": "heartbeat", "id": "h"]], ["recv": 1], ["ready": true], ["wait_close": 30]],
                                                 headers: headers)
        try second.waitUntilReady()
        let replaced = try first.finish()
        XCTAssertEqual(replaced.closeCode, 4509, "the older socket on node A is replaced: \(replaced)\n\(nodeA.log.suffix(2000))")
        let movedToB = try QueueFixture.eventually(timeout: 5) { try presence() == "node-b" }
        let holder = try presence()
        XCTAssertTrue(movedToB, "presence names node B: \(holder ?? "none")")
        // Node A's close of the replaced socket leaves the device online.
        usleep(500_000)
        XCTAssertEqual(try presence(), "node-b")
        XCTAssertTrue(try listedOnline(portA), "online through node B, as node A's list says")

        // A second device moves from A to B too; disabling it through node A (which held it
        // before) closes its socket on node B, where its presence now points.
        let code2 = try XCTUnwrap(try call(portA, "POST", "/api/v1/customer/devices/provision", bearer: jwt, json: ["org_id": org, "name": "d2"]).json?["activation_code"] as? String)
        let reg2 = try call(portB, "POST", "/api/v1/device/register", json: ["activation_code": code2])
        let device2 = try XCTUnwrap(reg2.json?["device_id"] as? String)
        let token2 = try XCTUnwrap(try call(portB, "POST", "/api/v1/device/auth",
                                            json: ["device_id": device2, "device_secret": try XCTUnwrap(reg2.json?["device_secret"] as? String)]).json?["token"] as? String)
        let steps: [[String: Any]] = [["send": ["type": "heartbeat", "id": "h"]], ["recv": 1], ["ready": true], ["wait_close": 20]]
        let onA = try IdentityTestHub.Session(port: portA, path: "/ws/device", steps: steps, headers: ["Authorization": "Bearer \(token2)"])
        try onA.waitUntilReady()
        let onB = try IdentityTestHub.Session(port: portB, path: "/ws/device", steps: steps, headers: ["Authorization": "Bearer \(token2)"])
        try onB.waitUntilReady()
        XCTAssertEqual(try onA.finish().closeCode, 4509)
        XCTAssertEqual(try call(portA, "POST", "/api/v1/customer/devices/\(device2)/disable", bearer: jwt).status, 200)
        let revoked = try onB.finish()
        XCTAssertEqual(revoked.closeCode, 4503, "node B closed the socket on node A's word: \(revoked)\n\(nodeB.log.suffix(2000))")

        // Node B dies without a word: the device goes offline within the TTL.
        nodeB.signal(SIGKILL)
        let killedAt = Date()
        XCTAssertNotNil(nodeB.waitForExit(timeout: 10))
        let offline = try QueueFixture.eventually(timeout: ttl + 3) { try !listedOnline(portA) }
        let took = Date().timeIntervalSince(killedAt)
        XCTAssertTrue(offline, "still listed online \(took) s after the kill")
        XCTAssertLessThanOrEqual(took, ttl + 1.5, "offline within the TTL (\(ttl) s) and a poll")
        XCTAssertNil(try presence())
        let status = try call(portA, "GET", "/api/v1/customer/devices/\(deviceID)/status", bearer: jwt)
        XCTAssertEqual(status.json?["online"] as? Bool, false, status.text)
        let dropped = try second.finish()
        XCTAssertNotEqual(dropped.closeCode, 4509, "\(dropped)")
    }
}
