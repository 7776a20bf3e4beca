import Foundation
import HubServer
import HubStore
import XCTest

/// A member of org A probes everything of org B, over REST (with its JWT and with its org's API
/// key) and over the customer socket: every probe answers exactly like the same probe of an id
/// that does not exist, and nothing of org B changes.
final class CrossTenantTests: XCTestCase {
    func testOrgsCannotSeeOrTouchEachOtherOnTheEmbeddedStore() async throws { try await crossTenant(.embedded) }
    func testOrgsCannotSeeOrTouchEachOtherOnRedisAndPostgres() async throws { try await crossTenant(.redisPostgres) }

    private func crossTenant(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let alice = UUID(), bob = UUID()
        let orgA = try hub.makeOrg("A", members: [alice: .admin])
        let orgB = try hub.makeOrg("B", members: [bob: .admin])
        let deviceB = try hub.makeDevice(org: orgB, as: bob, name: "b-pump")
        let sessionB = DiagnosticSession(orgID: orgB, deviceID: deviceB.id, requestedBy: bob, reason: "check")
        try await hub.stores.records.insertSession(sessionB)
        let aliceJWT = IdentityTestHub.jwt(alice)
        let keyA = try XCTUnwrap(try hub.expect(201, "POST", "/api/v1/admin/api-keys", bearer: IdentityTestHub.adminToken,
                                                json: ["org_id": orgA.uuidString, "name": "a", "scopes": ["devices:read", "devices:write"]])["key"] as? String)
        let missing = UUID().uuidString

        typealias Probe = (method: String, path: (String) -> String, body: ((String) -> [String: Any])?)
        let probes: [Probe] = [
            ("GET", { "/api/v1/customer/devices/\($0)" }, nil),
            ("GET", { "/api/v1/customer/devices/\($0)/status" }, nil),
            ("POST", { "/api/v1/customer/devices/\($0)/disable" }, nil),
            ("POST", { "/api/v1/customer/devices/\($0)/enable" }, nil),
            ("POST", { "/api/v1/customer/devices/\($0)/rotate-secret" }, nil),
            ("POST", { "/api/v1/customer/devices/\($0)/activation-code" }, nil),
        ]
        let orgProbes: [Probe] = [
            ("GET", { "/api/v1/customer/devices?org_id=\($0)" }, nil),
            ("POST", { _ in "/api/v1/customer/devices/provision" }, { ["org_id": $0, "name": "intruder"] }),
        ]
        for (credential, useKey) in [(aliceJWT, false), (keyA, true)] {
            for (probes, foreign) in [(probes, deviceB.id.uuidString), (orgProbes, orgB.uuidString)] {
                for probe in probes {
                    func call(_ id: String) throws -> TestClient.Response {
                        try hub.request(probe.method, probe.path(id), bearer: useKey ? nil : credential, apiKey: useKey ? credential : nil,
                                        json: probe.body?(id))
                    }
                    let probed = try call(foreign), absent = try call(missing)
                    let label = "\(useKey ? "api key" : "jwt") \(probe.method) \(probe.path("<id>"))"
                    XCTAssertEqual(probed.status, 404, "\(label): \(probed.text)")
                    XCTAssertEqual(absent.status, 404, "\(label): \(absent.text)")
                    XCTAssertEqual(problemShape(probed.json ?? [:]), problemShape(absent.json ?? [:]), "\(label): a foreign id reads like a missing one")
                }
            }
        }
        // Org B's device is untouched and still works.
        let stillB = try hub.expect(200, "GET", "/api/v1/customer/devices/\(deviceB.id)", bearer: IdentityTestHub.jwt(bob))
        XCTAssertEqual(stillB["state"] as? String, "active")
        _ = try hub.deviceToken(deviceB.id, deviceB.secret)
        // Alice's own org lists none of B's devices.
        let listA = try hub.expect(200, "GET", "/api/v1/customer/devices?org_id=\(orgA)", bearer: aliceJWT)
        XCTAssertEqual((listA["items"] as? [Any])?.count, 0)
        let orgsA = try hub.expect(200, "GET", "/api/v1/customer/orgs", bearer: aliceJWT)
        XCTAssertEqual((orgsA["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, [orgA.uuidString.lowercased()])

        // Over the socket: B's rooms answer like rooms that do not exist.
        let rooms = ["device:\(deviceB.id)", "org:\(orgB)", "session:\(sessionB.id)",
                     "device:\(missing)", "org:\(missing)", "session:\(missing)", "org:\(orgA)"]
        var steps: [[String: Any]] = [["send": ["type": "auth", "id": "auth", "token": aliceJWT]], ["recv": 1]]
        for (i, room) in rooms.enumerated() { steps += [["send": ["type": "subscribe", "id": "\(i)", "room": room]], ["recv": 1]] }
        let result = try hub.socket("/ws/customer", steps: steps).finish()
        XCTAssertEqual(result.received.count, rooms.count + 1, "\(result)")
        let replies = result.received.dropFirst().map { reply -> String in
            "\(reply["type"] ?? "-") \(reply["code"] ?? "-") \(reply["message"] ?? "-")"
        }
        for i in 0..<6 {
            XCTAssertEqual(replies[i], "error not_found no such room", "\(rooms[i])")
        }
        XCTAssertTrue(replies[6].hasPrefix("ack"), "alice's own org: \(replies[6])")
    }
}
