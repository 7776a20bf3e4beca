import Foundation
import HubTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Two hub processes on one Redis and one PostgreSQL: a device registered through one node
/// authenticates on the other, and disabling it through the node that does not hold its socket
/// closes the socket on the node that does (a `revoke` on that node's channel, which the
/// device's presence names).
final class MultiNodeIdentityTests: XCTestCase {
    func testDisableOnOneNodeClosesTheSocketOnTheOther() async throws {
        let redis = try RedisTestServer.startPrivate()
        defer { redis.stop() }
        let postgres = try PostgresTestServer.start()
        defer { postgres.stop() }
        let args = ["--host", "127.0.0.1", "--port", "0", "--loops", "2", "--redis-url", redis.url, "--postgres-url", postgres.url,
                    "--hash-key", testHashKey, "--admin-token", IdentityTestHub.adminToken,
                    "--supabase-jwt-secret", IdentityTestHub.jwtSecret, "--supabase-url", IdentityTestHub.supabaseURL]
        let nodeA = try HubProcess(arguments: args), nodeB = try HubProcess(arguments: args)
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
        XCTAssertEqual(try call(portB, "POST", "/api/v1/admin/orgs/\(org)/members", bearer: IdentityTestHub.adminToken,
                                json: ["user_id": user.uuidString, "role": "operator"]).status, 201)
        let jwt = IdentityTestHub.jwt(user)
        // Provision on A, register on B (codes are hashed with the shared --hash-key), auth on A.
        let code = try XCTUnwrap(try call(portA, "POST", "/api/v1/customer/devices/provision", bearer: jwt, json: ["org_id": org, "name": "d"]).json?["activation_code"] as? String)
        let reg = try call(portB, "POST", "/api/v1/device/register", json: ["activation_code": code])
        XCTAssertEqual(reg.status, 201, reg.text)
        let deviceID = try XCTUnwrap(reg.json?["device_id"] as? String), secret = try XCTUnwrap(reg.json?["device_secret"] as? String)
        let token = try XCTUnwrap(try call(portA, "POST", "/api/v1/device/auth", json: ["device_id": deviceID, "device_secret": secret]).json?["token"] as? String)

        // The socket lives on node A; the operator disables the device through node B.
        let hub = try IdentityTestHub.Session(port: portA, path: "/ws/device",
                                              steps: [["send": ["type": "heartbeat", "id": "h"]], ["recv": 1], ["ready": true], ["wait_close": 15]],
                                              headers: ["Authorization": "Bearer \(token)"])
        try hub.waitUntilReady()
        let status = try call(portB, "GET", "/api/v1/customer/devices/\(deviceID)/status", bearer: jwt)
        XCTAssertEqual(status.json?["online"] as? Bool, true, "presence is shared: node B sees the socket on node A. \(status.text)")
        XCTAssertEqual(try call(portB, "POST", "/api/v1/customer/devices/\(deviceID)/disable", bearer: jwt).status, 200)
        let result = try hub.finish()
        XCTAssertEqual(result.closeCode, 4503, "node A closed the socket on node B's word: \(result)\n\(nodeA.log.suffix(2000))")
        // The token is dead on both nodes.
        for port in [portA, portB] {
            XCTAssertEqual(try call(port, "GET", "/api/v1/device/me", bearer: token).status, 401)
        }
    }
}
