import Foundation
import HubAuth
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// Identity end to end over real sockets, on the embedded store and on real Redis +
/// PostgreSQL: the admin API, provisioning, registration, device auth, the device socket and
/// what disabling and rotating do to it, API keys, and the audit trail they leave.
final class IdentityEndToEndTests: XCTestCase {
    func testDeviceLifecycleOnTheEmbeddedStore() async throws { try await deviceLifecycle(.embedded) }
    func testDeviceLifecycleOnRedisAndPostgres() async throws { try await deviceLifecycle(.redisPostgres) }

    private func deviceLifecycle(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let operatorUser = UUID(), viewer = UUID()
        let org = try hub.makeOrg("Acme \(backend)", members: [operatorUser: .operator, viewer: .viewer])
        let jwt = IdentityTestHub.jwt(operatorUser)

        // Provision (operator) → the code is shown once; a viewer may not provision.
        try hub.expect(403, "POST", "/api/v1/customer/devices/provision", bearer: IdentityTestHub.jwt(viewer), json: ["org_id": org.uuidString, "name": "x"])
        let provisioned = try hub.expect(201, "POST", "/api/v1/customer/devices/provision", bearer: jwt, json: ["org_id": org.uuidString, "name": "pump 7"])
        let code = try XCTUnwrap(provisioned["activation_code"] as? String)
        let deviceID = try XCTUnwrap(UUID(uuidString: provisioned["device_id"] as? String ?? ""))
        XCTAssertEqual(provisioned["device_id"] as? String, deviceID.uuidString.lowercased(), "ids are lower case on the wire")
        let listed = try hub.expect(200, "GET", "/api/v1/customer/devices/\(deviceID)", bearer: jwt)
        XCTAssertEqual(listed["state"] as? String, "provisioned")
        XCTAssertTrue(listed.keys.contains("last_seen_at") && listed["last_seen_at"] is NSNull, "absent values are null: \(listed)")

        // Register with the code (typed in lower case with spaces: it is normalised), once.
        let typed = code.lowercased().replacingOccurrences(of: "-", with: " ")
        let reg = try hub.expect(201, "POST", "/api/v1/device/register", json: ["activation_code": typed, "agent_version": "1.2.3"])
        XCTAssertEqual(reg["device_id"] as? String, deviceID.uuidString.lowercased())
        let secret = try XCTUnwrap(reg["device_secret"] as? String)
        let reuse = try hub.expect(401, "POST", "/api/v1/device/register", json: ["activation_code": code])
        let bogus = try hub.expect(401, "POST", "/api/v1/device/register", json: ["activation_code": "0000-0000-0000"])
        XCTAssertEqual(problemShape(reuse), problemShape(bogus), "a used code and an unknown one look alike")

        // The secret is stored only as a hash.
        let record = try await hub.stores.records.device(id: deviceID)
        XCTAssertEqual(record?.state, .active)
        XCTAssertEqual(record?.secretHash, HubCrypto.sha256(secret), "stored as SHA-256 of the secret")
        XCTAssertNotEqual(record?.secretHash, Array(secret.utf8))

        // Auth → token; the token opens /ws/device; a wrong secret is 401.
        try hub.expect(401, "POST", "/api/v1/device/auth", json: ["device_id": deviceID.uuidString, "device_secret": secret + "x"])
        let token = try hub.deviceToken(deviceID, secret)
        let rejected = try hub.socket("/ws/device", steps: [], bearer: "not-a-token").finish()
        XCTAssertEqual(rejected.handshake, 401, "a bad token is refused before the upgrade")

        let session = try hub.socket("/ws/device", steps: [["send": ["type": "heartbeat", "id": "h1"]], ["recv": 1], ["ready": true], ["wait_close": 15]], bearer: token)
        try session.waitUntilReady()
        let status = try hub.expect(200, "GET", "/api/v1/customer/devices/\(deviceID)/status", bearer: jwt)
        XCTAssertEqual(status["online"] as? Bool, true, "presence follows the socket: \(status)")
        XCTAssertEqual(status["state"] as? String, "active")
        XCTAssertFalse(status["last_seen_at"] is NSNull, "the socket records last_seen_at: \(status)")
        // Disable while the socket is open: it closes with 4503 (forbidden), tokens die.
        let disabled = try hub.expect(200, "POST", "/api/v1/customer/devices/\(deviceID)/disable", bearer: jwt)
        XCTAssertEqual(disabled["state"] as? String, "disabled")
        let result = try session.finish()
        XCTAssertEqual(result.handshake, 101)
        XCTAssertEqual(result.received.first?["type"] as? String, "ack")
        XCTAssertEqual(result.received.first?["id"] as? String, "h1")
        XCTAssertEqual(result.closeCode, 4503, "disable closes the live socket: \(result)")
        let after = try hub.socket("/ws/device", steps: [], bearer: token).finish()
        XCTAssertEqual(after.handshake, 401, "the old token is revoked")
        try hub.expect(401, "POST", "/api/v1/device/auth", json: ["device_id": deviceID.uuidString, "device_secret": secret])
        try hub.expect(409, "POST", "/api/v1/customer/devices/\(deviceID)/disable", bearer: jwt)

        // Enable → auth works again; rotate → the old secret stops, the new one works.
        try hub.expect(200, "POST", "/api/v1/customer/devices/\(deviceID)/enable", bearer: jwt)
        let token2 = try hub.deviceToken(deviceID, secret)
        let rotated = try hub.expect(200, "POST", "/api/v1/customer/devices/\(deviceID)/rotate-secret", bearer: jwt)
        let newSecret = try XCTUnwrap(rotated["device_secret"] as? String)
        try hub.expect(401, "POST", "/api/v1/device/auth", json: ["device_id": deviceID.uuidString, "device_secret": secret])
        XCTAssertEqual(try hub.socket("/ws/device", steps: [], bearer: token2).finish().handshake, 401, "rotation revokes tokens")
        _ = try hub.deviceToken(deviceID, newSecret)

        // The audit trail has what happened, with actors.
        let audit = try await hub.stores.records.audit(orgID: org, beforeID: nil, limit: 100)
        let actions = Set(audit.map(\.action))
        for expected in ["org.create", "member.set", "device.provision", "device.register", "device.register_failed",
                         "device.auth_failed", "device.disable", "device.enable", "device.rotate_secret"] {
            XCTAssertTrue(actions.contains(expected), "audit lacks \(expected): \(actions.sorted())")
        }
        XCTAssertEqual(audit.first { $0.action == "device.disable" }?.actorID, operatorUser.uuidString.lowercased())
    }

    func testAPIKeysScopesAndRevocation() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let admin = UUID()
        let org = try hub.makeOrg("Keys", members: [admin: .admin])
        let device = try hub.makeDevice(org: org, as: admin)

        let readKey = try hub.expect(201, "POST", "/api/v1/admin/api-keys", bearer: IdentityTestHub.adminToken,
                                     json: ["org_id": org.uuidString, "name": "reader", "scopes": ["devices:read"]])
        let key = try XCTUnwrap(readKey["key"] as? String)
        XCTAssertTrue(key.hasPrefix("dhk_"))
        let keyID = try XCTUnwrap(readKey["id"] as? String)
        // Shown once: listing shows the prefix, never the key.
        let listing = try hub.expect(200, "GET", "/api/v1/admin/api-keys?org_id=\(org.uuidString)", bearer: IdentityTestHub.adminToken)
        let items = try XCTUnwrap(listing["items"] as? [[String: Any]])
        XCTAssertEqual(items.count, 1)
        XCTAssertNil(items[0]["key"])
        XCTAssertFalse(String(describing: listing).contains(String(key.suffix(20))))

        try hub.expect(200, "GET", "/api/v1/customer/devices/\(device.id)", apiKey: key)
        try hub.expect(200, "GET", "/api/v1/customer/devices?org_id=\(org.uuidString)", bearer: key)  // Bearer works too
        let noScope = try hub.expect(403, "POST", "/api/v1/customer/devices/provision", apiKey: key, json: ["org_id": org.uuidString, "name": "n"])
        XCTAssertEqual(noScope["code"] as? String, "forbidden")
        try hub.expect(403, "POST", "/api/v1/admin/orgs", apiKey: key, json: ["name": "nope"])
        // The last-used time is recorded.
        let used = try await hub.stores.records.apiKey(id: UUID(uuidString: keyID)!)
        XCTAssertNotNil(used?.lastUsedAt)

        // An org key cannot carry admin; a hub-wide one administers the hub.
        try hub.expect(400, "POST", "/api/v1/admin/api-keys", bearer: IdentityTestHub.adminToken,
                       json: ["org_id": org.uuidString, "name": "sneaky", "scopes": ["admin"]])
        let adminKey = try XCTUnwrap(try hub.expect(201, "POST", "/api/v1/admin/api-keys", bearer: IdentityTestHub.adminToken,
                                                    json: ["org_id": NSNull(), "name": "ops", "scopes": ["admin"]])["key"] as? String)
        try hub.expect(201, "POST", "/api/v1/admin/orgs", bearer: adminKey, json: ["name": "Made by key"])

        // Revoked: 401 from then on, and a second revoke is a conflict.
        try hub.expect(200, "POST", "/api/v1/admin/api-keys/\(keyID)/revoke", bearer: IdentityTestHub.adminToken)
        try hub.expect(401, "GET", "/api/v1/customer/devices/\(device.id)", apiKey: key)
        try hub.expect(409, "POST", "/api/v1/admin/api-keys/\(keyID)/revoke", bearer: IdentityTestHub.adminToken)
        // The admin API is closed to everything else, and refusals are counted where an
        // operator alerts on them.
        let failuresBefore = MetricsText.sum(try hub.request("GET", "/metrics").text, "devicehub_auth_failures_total")
        try hub.expect(401, "POST", "/api/v1/admin/orgs", json: ["name": "anon"])
        try hub.expect(401, "POST", "/api/v1/admin/orgs", bearer: "wrong-admin-token-0123456789", json: ["name": "x"])
        try hub.expect(401, "POST", "/api/v1/admin/orgs", bearer: IdentityTestHub.jwt(admin), json: ["name": "user"])
        let failuresAfter = MetricsText.sum(try hub.request("GET", "/metrics").text, "devicehub_auth_failures_total")
        XCTAssertEqual(failuresAfter - failuresBefore, 3, "three refused credentials counted")
    }

    func testFailedCredentialsAreLimitedPerIP() async throws {
        let hub = try await IdentityTestHub(.embedded) { $0.authFailuresPerMinutePerIP = 3 }
        defer { hub.stop() }
        for _ in 0..<3 {
            try hub.expect(401, "POST", "/api/v1/device/auth", json: ["device_id": UUID().uuidString, "device_secret": "guess"])
        }
        let limited = try hub.request("POST", "/api/v1/device/auth", json: ["device_id": UUID().uuidString, "device_secret": "guess"])
        XCTAssertEqual(limited.status, 429, limited.text)
        XCTAssertEqual(limited.json?["code"] as? String, "rate_limited")
        let retry = try XCTUnwrap(Int(limited.header("Retry-After") ?? ""))
        // A sliding window: the oldest counted failures age out within two windows.
        XCTAssertTrue((1...120).contains(retry), "Retry-After \(retry)")
        // The same budget covers bearer tokens on guarded routes and JWTs. A loop reads the
        // shared budget for a client it has seen fail, so the guard answers 429 at the latest
        // after one refusal per loop (the hub under test has two).
        var refusedFirst = 0
        var last = 0
        for _ in 0..<6 {
            last = try hub.request("GET", "/api/v1/customer/orgs", bearer: "x.y.z").status
            if last == 429 { break }
            XCTAssertEqual(last, 401)
            refusedFirst += 1
        }
        XCTAssertEqual(last, 429)
        XCTAssertLessThanOrEqual(refusedFirst, 2)
    }

    func testCustomerSocketAuthRefreshAndExpiry() async throws {
        let hub = try await IdentityTestHub(.embedded) {
            $0.jwtLeeway = 0
            $0.customerAuthDeadline = 1
        }
        defer { hub.stop() }
        let user = UUID()
        let org = try hub.makeOrg("Watchers", members: [user: .viewer])

        // Auth by first message, then a room of the user's org.
        let first = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "auth", "id": "a", "token": IdentityTestHub.jwt(user)]], ["recv": 1],
            ["send": ["type": "subscribe", "id": "s", "room": "org:\(org.uuidString)"]], ["recv": 1],
        ]).finish()
        XCTAssertEqual(first.received.map { $0["type"] as? String }, ["ack", "ack"], "\(first)")
        XCTAssertEqual(first.received.last?["room"] as? String, "org:\(org.uuidString.lowercased())")

        // No auth within the deadline: closed with auth_failed.
        let silent = try hub.socket("/ws/customer", steps: [["wait_close": 10]]).finish()
        XCTAssertEqual(silent.closeCode, 4500, "\(silent)")

        // A bad token in the first message: error, then 4500.
        let bad = try hub.socket("/ws/customer", steps: [["send": ["type": "auth", "token": "a.b.c"]], ["wait_close": 10]]).finish()
        XCTAssertEqual(bad.received.first?["code"] as? String, "unauthenticated")
        XCTAssertEqual(bad.closeCode, 4500)

        // A token that lapses closes the socket with token_expired ...
        let short = IdentityTestHub.jwt(user, expiresIn: 2)
        let expiring = try hub.socket("/ws/customer", steps: [["wait_close": 15]], bearer: short).finish()
        XCTAssertEqual(expiring.closeCode, 4001, "\(expiring)")
        // ... unless refreshed in time.
        let refreshed = try hub.socket("/ws/customer", steps: [
            ["send": ["type": "auth", "id": "r", "token": IdentityTestHub.jwt(user, expiresIn: 3600)]], ["recv": 1],
            ["sleep": 3], ["send": ["type": "ping", "id": "p"]], ["recv": 1],
        ], bearer: IdentityTestHub.jwt(user, expiresIn: 2)).finish()
        XCTAssertEqual(refreshed.received.map { $0["id"] as? String }, ["r", "p"], "\(refreshed)")
        XCTAssertNil(refreshed.closeCode.flatMap { $0 == 4001 ? $0 : nil }, "still open after the first token's exp")
    }

    func testDeviceListPagesAndFilters() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let user = UUID()
        let org = try hub.makeOrg("Paging", members: [user: .operator])
        let jwt = IdentityTestHub.jwt(user)
        var names: [String] = []
        for i in 0..<7 {
            let name = "dev-\(i)"
            names.append(name)
            if i < 3 {
                _ = try hub.makeDevice(org: org, as: user, name: name)
            } else {
                try hub.expect(201, "POST", "/api/v1/customer/devices/provision", bearer: jwt, json: ["org_id": org.uuidString, "name": name])
            }
        }
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try hub.expect(200, "GET", "/api/v1/customer/devices?org_id=\(org)&limit=3" + (cursor.map { "&cursor=\($0)" } ?? ""), bearer: jwt)
            let items = try XCTUnwrap(page["items"] as? [[String: Any]])
            XCTAssertLessThanOrEqual(items.count, 3)
            seen += items.compactMap { $0["name"] as? String }
            XCTAssertTrue(page.keys.contains("next_cursor"), "next_cursor is always present: \(page)")
            cursor = page["next_cursor"] as? String
            pages += 1
        } while cursor != nil && pages < 10
        XCTAssertEqual(seen, names.sorted(), "every device once, in name order, over \(pages) pages")
        let active = try hub.expect(200, "GET", "/api/v1/customer/devices?org_id=\(org)&state=active", bearer: jwt)
        XCTAssertEqual((active["items"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["dev-0", "dev-1", "dev-2"])
        let offline = try hub.expect(200, "GET", "/api/v1/customer/devices?org_id=\(org)&online=true", bearer: jwt)
        XCTAssertEqual((offline["items"] as? [Any])?.count, 0, "no device holds a socket")
        for bad in ["limit=0", "limit=201", "state=broken", "online=maybe", "cursor=%21%21"] {
            try hub.expect(400, "GET", "/api/v1/customer/devices?org_id=\(org)&\(bad)", bearer: jwt)
        }
        try hub.expect(400, "GET", "/api/v1/customer/devices", bearer: jwt)
    }

    func testRequestsAreLimitedPerPrincipal() async throws {
        let hub = try await IdentityTestHub(.embedded) { $0.requestsPerMinute = 5 }
        defer { hub.stop() }
        let user = UUID()
        let org = try hub.makeOrg("Busy", members: [user: .operator])
        // Setting up took requests from the admin and the user; a fresh device has its own budget.
        // (Registration and auth are open routes, limited per IP: four calls here.)
        let device = try hub.makeDevice(org: org, as: user), other = try hub.makeDevice(org: org, as: user, name: "other")
        let token = try hub.deviceToken(device.id, device.secret), otherToken = try hub.deviceToken(other.id, other.secret)
        for _ in 0..<5 { try hub.expect(200, "GET", "/api/v1/device/me", bearer: token) }
        let limited = try hub.request("GET", "/api/v1/device/me", bearer: token)
        XCTAssertEqual(limited.status, 429, limited.text)
        XCTAssertEqual(limited.json?["code"] as? String, "rate_limited")
        XCTAssertNotNil(limited.header("Retry-After"))
        // Another principal has its own budget.
        try hub.expect(200, "GET", "/api/v1/device/me", bearer: otherToken)
        // Open routes count per IP: the fifth call from this IP is still admitted, the sixth not.
        try hub.expect(401, "POST", "/api/v1/device/auth", json: ["device_id": UUID().uuidString, "device_secret": "x"])
        try hub.expect(429, "POST", "/api/v1/device/auth", json: ["device_id": UUID().uuidString, "device_secret": "x"])
    }
}
