// hubctl's admin commands against a fake admin API (Python http.server with canned responses):
// method, path, Authorization and JSON body of every request; output on success; problem
// reporting and exit status on failure; argument validation before anything is sent.

import Foundation
import HubTestSupport
import XCTest

final class HubCtlAdminTests: XCTestCase {
    private static let org = "4b0e7c7e-8f0a-4c55-9a57-2f0f8e9c1a01"
    private static let user = "9d5e2a8b-1c3f-4e6a-8b7d-0a1b2c3d4e5f"
    private static let key = "c0ffee00-1234-4abc-8def-0123456789ab"
    private static let dup = "00000000-0000-4000-8000-000000000409"

    private static let routes = """
        [
          {"method": "POST", "path": "/api/v1/admin/orgs", "status": 201,
           "body": {"id": "\(org)", "name": "Acme Corp", "slug": "acme", "require_distinct_approver": false,
                    "auto_approved_kinds": [], "created_at": "2026-12-06T10:00:00Z"}},
          {"method": "GET", "path": "/api/v1/admin/orgs/\(org)", "status": 200,
           "body": {"id": "\(org)", "name": "Acme Corp", "slug": "acme"}},
          {"method": "GET", "path": "/api/v1/admin/orgs/\(dup)", "status": 404, "content_type": "application/problem+json",
           "body": {"type": "https://devicehub.dev/problems/not_found", "title": "Not Found", "status": 404,
                    "code": "not_found", "detail": "no such organisation"}},
          {"method": "POST", "path": "/api/v1/admin/orgs/\(org)/members", "status": 201,
           "body": {"org_id": "\(org)", "user_id": "\(user)", "role": "operator"}},
          {"method": "DELETE", "path": "/api/v1/admin/orgs/\(org)/members/\(user)", "status": 204},
          {"method": "GET", "path": "/api/v1/admin/orgs/\(org)/members", "status": 200,
           "body": {"items": [{"org_id": "\(org)", "user_id": "\(user)", "role": "operator"}]}},
          {"method": "POST", "path": "/api/v1/admin/api-keys", "status": 201,
           "body": {"id": "\(key)", "key": "dhk_ABCDEFGHIJKL_secret", "prefix": "ABCDEFGHIJKL", "org_id": "\(org)",
                    "name": "ci", "scopes": ["devices:read"], "expires_at": null, "created_at": "2026-12-06T10:00:00Z"}},
          {"method": "GET", "path": "/api/v1/admin/api-keys", "status": 200, "body": {"items": []}},
          {"method": "POST", "path": "/api/v1/admin/api-keys/\(key)/revoke", "status": 200,
           "body": {"id": "\(key)", "revoked_at": "2026-12-06T11:00:00Z"}},
          {"method": "POST", "path": "/api/v1/admin/api-keys/\(dup)/revoke", "status": 409, "content_type": "application/problem+json",
           "body": {"type": "https://devicehub.dev/problems/conflict", "title": "Conflict", "status": 409,
                    "code": "conflict", "detail": "API key already revoked"}}
        ]
        """

    private var server: PythonHTTPServer!

    override func setUpWithError() throws {
        server = try PythonHTTPServer(routesJSON: Self.routes)
    }

    override func tearDown() {
        server?.stop()
    }

    /// Runs hubctl with the fake server's URL and a token given as flags.
    private func hubctl(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> ChildProcess.Result {
        try ChildProcess.runHubctl(["--url", server.baseURL(), "--token", "admin-secret"] + arguments)
    }

    /// The one request the server received, checked for method, path and credential.
    private func onlyRequest(_ method: String, _ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> PythonHTTPServer.RecordedRequest {
        let recorded = try server.recordedRequests()
        XCTAssertEqual(recorded.count, 1, "requests: \(recorded.map { "\($0.method) \($0.path)" })", file: file, line: line)
        let request = try XCTUnwrap(recorded.last, file: file, line: line)
        XCTAssertEqual(request.method, method, file: file, line: line)
        XCTAssertEqual(request.path, path, file: file, line: line)
        XCTAssertEqual(request.header("Authorization"), "Bearer admin-secret", file: file, line: line)
        return request
    }

    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    // MARK: org

    func testOrgCreateSendsNameAndSlugAndPrettyPrints() throws {
        let result = try hubctl(["org", "create", "--name", "Acme Corp", "--slug", "acme"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let request = try onlyRequest("POST", "/api/v1/admin/orgs")
        XCTAssertEqual(request.header("Content-Type"), "application/json")
        XCTAssertEqual(request.jsonBody as NSDictionary?, ["name": "Acme Corp", "slug": "acme"])
        XCTAssertEqual(try json(result.stdout)["id"] as? String, Self.org)
        XCTAssertTrue(result.stdout.contains("\n  \"name\" : \"Acme Corp\""), result.stdout)
    }

    func testOrgCreateWithoutSlugAndWithEnvironmentCredentials() throws {
        // Options after the subcommand, URL and token from the environment.
        let result = try ChildProcess.runHubctl(["org", "create", "--name", "Acme Corp"],
                                                environment: ["DEVICEHUB_URL": server.baseURL() + "/", "DEVICEHUB_ADMIN_TOKEN": "admin-secret"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let request = try onlyRequest("POST", "/api/v1/admin/orgs")
        XCTAssertEqual(request.jsonBody as NSDictionary?, ["name": "Acme Corp"])
    }

    func testOrgGetAndRawJSON() throws {
        let result = try ChildProcess.runHubctl(["org", "get", Self.org.uppercased(), "--json", "--url", server.baseURL(), "--token", "admin-secret"])
        XCTAssertEqual(result.status, 0, result.stderr)
        _ = try onlyRequest("GET", "/api/v1/admin/orgs/\(Self.org)")
        XCTAssertEqual(result.stdout, #"{"id": "\#(Self.org)", "name": "Acme Corp", "slug": "acme"}"# + "\n")
    }

    func testProblemIsReportedOnStderrWithExitStatusOne() throws {
        let result = try hubctl(["org", "get", Self.dup])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdout, "")
        XCTAssertEqual(result.stderr, "error: HTTP 404 not_found: no such organisation\n")
    }

    // MARK: member

    func testMemberAdd() throws {
        let result = try hubctl(["member", "add", "--org", Self.org, "--user", Self.user, "--role", "operator"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let request = try onlyRequest("POST", "/api/v1/admin/orgs/\(Self.org)/members")
        XCTAssertEqual(request.jsonBody as NSDictionary?, ["user_id": Self.user, "role": "operator"])
        XCTAssertEqual(try json(result.stdout)["role"] as? String, "operator")
    }

    func testMemberRemovePrintsNothingOn204() throws {
        let result = try hubctl(["member", "remove", "--org", Self.org, "--user", Self.user])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "")
        let request = try onlyRequest("DELETE", "/api/v1/admin/orgs/\(Self.org)/members/\(Self.user)")
        XCTAssertEqual(request.body, "")
    }

    func testMemberList() throws {
        let result = try hubctl(["member", "list", "--org", Self.org])
        XCTAssertEqual(result.status, 0, result.stderr)
        _ = try onlyRequest("GET", "/api/v1/admin/orgs/\(Self.org)/members")
        XCTAssertEqual((try json(result.stdout)["items"] as? [Any])?.count, 1)
    }

    // MARK: api-key

    func testAPIKeyCreateForAnOrg() throws {
        let result = try hubctl(["api-key", "create", "--org", Self.org, "--name", "ci", "--scope", "devices:read",
                                 "--scope", "devices:write", "--expires-in-days", "30"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let request = try onlyRequest("POST", "/api/v1/admin/api-keys")
        XCTAssertEqual(request.jsonBody as NSDictionary?,
                       ["org_id": Self.org, "name": "ci", "scopes": ["devices:read", "devices:write"], "expires_in_days": 30])
        XCTAssertEqual(try json(result.stdout)["key"] as? String, "dhk_ABCDEFGHIJKL_secret")
    }

    func testAPIKeyCreateHubWideSendsNullOrg() throws {
        let result = try hubctl(["api-key", "create", "--hub-wide", "--name", "ops", "--scope", "admin"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let request = try onlyRequest("POST", "/api/v1/admin/api-keys")
        XCTAssertEqual(request.jsonBody as NSDictionary?, ["org_id": NSNull(), "name": "ops", "scopes": ["admin"]])
        XCTAssertTrue(request.body.contains(#""org_id":null"#), request.body)
    }

    func testAPIKeyListWithAndWithoutOrg() throws {
        XCTAssertEqual(try hubctl(["api-key", "list", "--org", Self.org]).status, 0)
        XCTAssertEqual(try hubctl(["api-key", "list"]).status, 0)
        let recorded = try server.recordedRequests()
        XCTAssertEqual(recorded.map(\.path), ["/api/v1/admin/api-keys?org_id=\(Self.org)", "/api/v1/admin/api-keys"])
        XCTAssertEqual(recorded.map(\.method), ["GET", "GET"])
    }

    func testAPIKeyRevokeAndConflict() throws {
        let ok = try hubctl(["api-key", "revoke", Self.key])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try json(ok.stdout)["revoked_at"] as? String, "2026-12-06T11:00:00Z")
        let again = try hubctl(["api-key", "revoke", Self.dup])
        XCTAssertEqual(again.status, 1)
        XCTAssertEqual(again.stderr, "error: HTTP 409 conflict: API key already revoked\n")
        let recorded = try server.recordedRequests()
        XCTAssertEqual(recorded.map(\.path), ["/api/v1/admin/api-keys/\(Self.key)/revoke", "/api/v1/admin/api-keys/\(Self.dup)/revoke"])
        XCTAssertEqual(recorded.map(\.method), ["POST", "POST"])
        XCTAssertEqual(recorded.first?.header("Content-Length"), "0")
    }

    // MARK: Failures before or instead of a request

    func testInvalidArgumentsSendNothing() throws {
        let cases: [[String]] = [
            ["org", "get", "../../metrics"],
            ["member", "add", "--org", Self.org, "--user", "not-a-uuid", "--role", "admin"],
            ["member", "add", "--org", Self.org, "--user", Self.user, "--role", "owner"],
            ["api-key", "create", "--name", "x", "--scope", "admin"],
            ["api-key", "create", "--org", Self.org, "--hub-wide", "--name", "x", "--scope", "admin"],
            ["api-key", "create", "--org", Self.org, "--name", "x"],
            ["api-key", "create", "--org", Self.org, "--name", "x", "--scope", "admin", "--expires-in-days", "0"],
        ]
        for arguments in cases {
            let result = try hubctl(arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")   // EX_USAGE
            XCTAssertFalse(result.stderr.isEmpty, "\(arguments)")
        }
        XCTAssertEqual(try server.recordedRequests().count, 0)
    }

    func testMissingTokenIsAUsageError() throws {
        let result = try ChildProcess.runHubctl(["org", "get", Self.org, "--url", server.baseURL()])
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.stderr.contains("DEVICEHUB_ADMIN_TOKEN"), result.stderr)
        XCTAssertEqual(try server.recordedRequests().count, 0)
    }

    func testUnreachableHub() throws {
        let closed = try PythonHTTPServer()
        let url = closed.baseURL()
        closed.stop()
        let result = try ChildProcess.runHubctl(["--url", url, "--token", "t", "org", "get", Self.org])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("connect failed"), result.stderr)
    }
}
