import Foundation
import HubServer
import HubStore
import XCTest

/// Schemathesis (an independent OpenAPI test generator) against a running hub: it generates
/// requests from `protocol/openapi.yaml` (valid and invalid ones, and sequences through the
/// links between operations) and checks every answer against the document: status codes,
/// content types, response schemas, no 5xx. Two passes: the admin API with the admin token,
/// the customer and device APIs with a member's JWT.
final class OpenAPIConformanceTests: XCTestCase {
    func testTheHubAnswersAsItsOpenAPIDocumentSays() async throws {
        let hub = try await IdentityTestHub(.embedded) {
            $0.requestsPerMinute = 10_000_000
            $0.authFailuresPerMinutePerIP = 10_000_000
        }
        defer { hub.stop() }
        let user = UUID()
        _ = try hub.makeOrg("Schemathesis", members: [user: .admin])
        let spec = PythonPeer.repositoryRoot.appendingPathComponent("protocol/openapi.yaml").path
        let schemathesis = URL(fileURLWithPath: try PythonPeer.interpreter()).deletingLastPathComponent().appendingPathComponent("schemathesis").path
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: schemathesis), "schemathesis is in scripts/test-requirements.txt")

        for (paths, credential) in [("^/api/v1/admin", IdentityTestHub.adminToken),
                                    ("^/(api/v1/(customer|device)|healthz|readyz|version)", IdentityTestHub.jwt(user))] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: schemathesis)
            // Schemathesis keeps a cache in its working directory: not in the repository.
            p.currentDirectoryURL = URL(fileURLWithPath: NSTemporaryDirectory())
            p.arguments = ["--config-file", PythonPeer.script("schemathesis.toml"), "run", spec, "--url", "http://127.0.0.1:\(hub.port)", "--header", "Authorization: Bearer \(credential)",
                           "--include-path-regex", paths, "--max-examples", "25", "--seed", "20261206",
                           // GET /devices/:id also matches /devices/provision, so OPTIONS on that path
                           // truthfully allows GET; the document cannot say so for one path.
                           "--exclude-checks", "allow_header_conformance", "--no-color"]
            var env = ProcessInfo.processInfo.environment
            env["SCHEMATHESIS_HOOKS"] = nil
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "schemathesis on \(paths):\n\(text.suffix(6000))")
            XCTAssertTrue(text.contains("generated"), text.suffix(2000).description)
        }
    }
}
