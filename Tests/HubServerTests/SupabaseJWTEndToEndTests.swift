import Foundation
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// Supabase tokens minted by an independent library (PyJWT + cryptography, Tests/peers/jwt_mint.py)
/// presented to a running hub over HTTP: ES256 and RS256 keys come from a JWKS the hub fetches
/// over HTTPS with its own client (a local server with a test CA), HS256 with the configured
/// secret. Every case must be accepted or refused through the whole stack as the rules say.
final class SupabaseJWTEndToEndTests: XCTestCase {
    func testEveryMintedCaseThroughTheHTTPStack() async throws {
        // A self-signed certificate for 127.0.0.1, trusted by the hub through --supabase-ca-file.
        let dir = NSTemporaryDirectory() + "jwks-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        _ = try PostgresTestServer.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                           "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert,
                                                           "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"])
        let jwksServer = try PythonHTTPServer(tlsCertificate: cert, tlsKey: key)
        defer { jwksServer.stop() }
        let supabaseURL = "https://127.0.0.1:\(jwksServer.port)"

        // Mint against the hub's issuer, then serve the JWKS the tokens were signed for.
        let python = try PythonPeer.interpreter()
        let mint = Process()
        mint.executableURL = URL(fileURLWithPath: python)
        mint.arguments = [PythonPeer.script("jwt_mint.py")]
        mint.environment = ProcessInfo.processInfo.environment.merging(["JWT_MINT_ISSUER": supabaseURL + "/auth/v1"]) { $1 }
        let out = Pipe()
        mint.standardOutput = out
        try mint.run()
        let manifestData = out.fileHandleForReading.readDataToEndOfFile()
        mint.waitUntilExit()
        XCTAssertEqual(mint.terminationStatus, 0)
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let jwks = try XCTUnwrap((manifest["jwks"] as? [String: Any])?["initial"] as? String)
        let routes: [[String: Any]] = [["method": "GET", "path": "/auth/v1/.well-known/jwks.json", "status": 200, "body": jwks,
                                        "headers": ["Content-Type": "application/json"]]]
        try jwksServer.setRoutes(String(decoding: try JSONSerialization.data(withJSONObject: routes), as: UTF8.self))

        let (server, _) = try startTestServer {
            $0.supabaseURL = supabaseURL
            $0.supabaseCAFile = cert
            $0.supabaseJWTSecret = manifest["secret"] as? String
            $0.adminToken = IdentityTestHub.adminToken
            $0.authFailuresPerMinutePerIP = 100_000
        }
        defer { server.drain(gracePeriod: 1) }
        try await waitUntilReady(server)
        let user = try XCTUnwrap(manifest["user_id"] as? String)
        let client = try TestClient(port: server.httpPort)
        let org = try client.request("POST", "/api/v1/admin/orgs", headers: ["Authorization": "Bearer \(IdentityTestHub.adminToken)",
                                                                                "Content-Type": "application/json"], body: #"{"name":"JWT org"}"#)
        let orgID = try XCTUnwrap(org.json?["id"] as? String)
        let member = try client.request("POST", "/api/v1/admin/orgs/\(orgID)/members", headers: ["Authorization": "Bearer \(IdentityTestHub.adminToken)",
                                                                                                "Content-Type": "application/json"],
                                        body: #"{"user_id":"\#(user)","role":"viewer"}"#)
        XCTAssertEqual(member.status, 201, member.text)


        let cases = try XCTUnwrap(manifest["cases"] as? [[String: Any]]).filter { ($0["verifier"] as? String) == "default" }
        var checked = 0
        for c in cases {
            let name = c["name"] as? String ?? "?"
            // HTTP itself trims a header value's surrounding spaces: that case is the verifier's.
            // The leeway edges are one second wide, less than this test's run time: HubAuthTests
            // check them with the mint's own clock.
            if name.hasSuffix("leading-space") || name.contains("leeway") { continue }
            let token = try XCTUnwrap(c["token"] as? String)
            var expectAccepted = (c["expect"] as? String) == "accept"
            // The verifier accepts Supabase's anonymous sign-ins; the hub refuses them.
            if name.hasSuffix("anonymous-user") { expectAccepted = false }
            let r = try client.request("GET", "/api/v1/customer/orgs", headers: ["Authorization": "Bearer \(token)"])
            if expectAccepted {
                XCTAssertEqual(r.status, 200, "\(name): \(r.text)")
                let items = r.json?["items"] as? [[String: Any]]
                XCTAssertEqual(items?.first?["id"] as? String, orgID.lowercased(), name)
                XCTAssertEqual(items?.first?["role"] as? String, "viewer", name)
            } else {
                XCTAssertEqual(r.status, 401, "\(name) must be refused: \(r.text)")
                XCTAssertEqual(r.json?["code"] as? String, "unauthenticated", name)
                if let reason = c["reason"] as? String, !reason.isEmpty {
                    XCTAssertFalse(r.text.contains(reason), "\(name): the reason (\(reason)) stays in the log")
                }
            }
            checked += 1
        }
        // The keys really came over HTTPS from the local server (the refresher fetches at start;
        // the unknown kids of the bogus cases may add at most one rate-limited refetch).
        let fetches = try jwksServer.recordedRequests().filter { $0.path == "/auth/v1/.well-known/jwks.json" }.count
        XCTAssertTrue((1...2).contains(fetches), "\(fetches) JWKS fetches")
        XCTAssertGreaterThan(checked, 80, "the manifest's cases for HS256, ES256 and RS256")
        for alg in ["HS256", "ES256", "RS256"] {
            XCTAssertTrue(cases.contains { ($0["name"] as? String) == "\(alg)/valid" }, alg)
        }
    }
}
