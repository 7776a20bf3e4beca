import Foundation
import HubServer
import XCTest

/// `hubctl` against a real hub process: the admin API end to end, and a `mint-dev-jwt` token
/// accepted by the hub configured with the same secret.
final class HubctlEndToEndTests: XCTestCase {
    private func hubctl(_ args: [String], port: Int, file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = devicehubBinary().deletingLastPathComponent().appendingPathComponent("hubctl")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["DEVICEHUB_URL"] = "http://127.0.0.1:\(port)"
        env["DEVICEHUB_ADMIN_TOKEN"] = IdentityTestHub.adminToken
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    private func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    func testAdminCommandsAgainstARunningHub() throws {
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--loops", "1",
                                             "--admin-token", IdentityTestHub.adminToken,
                                             "--supabase-jwt-secret", IdentityTestHub.jwtSecret])
        let port = try hub.waitUntilListening()

        let org = try hubctl(["org", "create", "--name", "Acme Robotics", "--json"], port: port)
        XCTAssertEqual(org.status, 0, org.err)
        let orgID = try XCTUnwrap(json(org.out)["id"] as? String, org.out)
        XCTAssertEqual(json(org.out)["slug"] as? String, "acme-robotics")
        XCTAssertEqual(try hubctl(["org", "get", orgID, "--json"], port: port).status, 0)

        let user = UUID().uuidString.lowercased()
        let member = try hubctl(["member", "add", "--org", orgID, "--user", user, "--role", "operator", "--json"], port: port)
        XCTAssertEqual(member.status, 0, member.err)
        let members = try hubctl(["member", "list", "--org", orgID, "--json"], port: port)
        XCTAssertTrue(members.out.contains(user), members.out)

        let key = try hubctl(["api-key", "create", "--org", orgID, "--name", "ci", "--scope", "devices:read", "--json"], port: port)
        XCTAssertEqual(key.status, 0, key.err)
        let keyID = try XCTUnwrap(json(key.out)["id"] as? String)
        XCTAssertTrue((json(key.out)["key"] as? String ?? "").hasPrefix("dhk_"))
        let keys = try hubctl(["api-key", "list", "--org", orgID, "--json"], port: port)
        XCTAssertTrue(keys.out.contains(keyID), keys.out)
        XCTAssertEqual(try hubctl(["api-key", "revoke", keyID, "--json"], port: port).status, 0)
        let again = try hubctl(["api-key", "revoke", keyID], port: port)
        XCTAssertEqual(again.status, 1, "a second revoke is refused")
        XCTAssertTrue(again.err.contains("409"), again.err)

        // A dev token for the member, accepted by the hub: the member sees its org.
        let minted = try hubctl(["mint-dev-jwt", "--secret", IdentityTestHub.jwtSecret, "--sub", user], port: port)
        XCTAssertEqual(minted.status, 0, minted.err)
        let token = minted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let orgs = try TestClient(port: port).request("GET", "/api/v1/customer/orgs", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(orgs.status, 200, orgs.text)
        XCTAssertTrue(orgs.text.contains(orgID), orgs.text)

        // A wrong admin token: the problem's code on stderr, exit 1.
        var env = ProcessInfo.processInfo.environment
        env["DEVICEHUB_ADMIN_TOKEN"] = "not-the-admin-token-at-all"
        let bad = Process()
        bad.executableURL = devicehubBinary().deletingLastPathComponent().appendingPathComponent("hubctl")
        bad.arguments = ["--url", "http://127.0.0.1:\(port)", "org", "create", "--name", "x"]
        bad.environment = env
        let err = Pipe()
        bad.standardError = err
        bad.standardOutput = FileHandle.nullDevice
        try bad.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        bad.waitUntilExit()
        XCTAssertEqual(bad.terminationStatus, 1)
        XCTAssertTrue(text.contains("401") && text.contains("unauthenticated"), text)
    }
}
