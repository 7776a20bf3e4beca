// `hubctl mint-dev-jwt` checked by an independent implementation: PyJWT must accept the token
// with the secret and audience "authenticated", and reject it with another secret. A missing
// Python or PyJWT fails these tests; they are never skipped.

import Foundation
import HubTestSupport
import XCTest

final class HubCtlDevJWTTests: XCTestCase {
    /// Decodes argv[1] with secret argv[2] (PyJWT, HS256 only, audience "authenticated",
    /// issuer argv[3]) and prints the claims as JSON; exits 3 on an invalid signature.
    private static let verifier = """
        import json, sys
        try:
            import jwt
        except ImportError:
            sys.exit("PyJWT is not installed for " + sys.executable + " (scripts/test installs it into .build-test-venv)")
        token, secret, issuer = sys.argv[1], sys.argv[2], sys.argv[3]
        header = jwt.get_unverified_header(token)
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated", issuer=issuer,
                                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.InvalidSignatureError:
            sys.exit(3)
        print(json.dumps({"header": header, "claims": claims}))
        """

    private func verify(_ token: String, secret: String, issuer: String, file: StaticString = #filePath, line: UInt = #line) throws -> ChildProcess.Result {
        let (executable, prefix) = PythonHTTPServer.interpreter()
        return try ChildProcess.run(executable, prefix + ["-c", Self.verifier, token, secret, issuer])
    }

    private func mint(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let result = try ChildProcess.runHubctl(["mint-dev-jwt"] + arguments, environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        let token = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(token.split(separator: ".").count, 3, token)
        return token
    }

    func testPyJWTAcceptsTheMintedToken() throws {
        let sub = "6f1c1a9e-35a5-4e8a-9d6c-7f0d0c1f2a3b"
        let secret = "super-secret-jwt-token-with-at-least-32-characters-long"
        let token = try mint(["--secret", secret, "--sub", sub, "--email", "ada@example.com", "--ttl", "600",
                              "--supabase-url", "https://abc.supabase.co/"])
        let result = try verify(token, secret: secret, issuer: "https://abc.supabase.co/auth/v1")
        XCTAssertEqual(result.status, 0, "PyJWT rejected the token: \(result.stderr)")
        let decoded = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.stdout)
        XCTAssertEqual(decoded["header"] as? NSDictionary, ["alg": "HS256", "typ": "JWT"])
        let claims = try XCTUnwrap(decoded["claims"] as? [String: Any])
        XCTAssertEqual(claims["sub"] as? String, sub)
        XCTAssertEqual(claims["aud"] as? String, "authenticated")
        XCTAssertEqual(claims["role"] as? String, "authenticated")
        XCTAssertEqual(claims["email"] as? String, "ada@example.com")
        XCTAssertEqual(claims["iss"] as? String, "https://abc.supabase.co/auth/v1")
        let iat = try XCTUnwrap(claims["iat"] as? Int), exp = try XCTUnwrap(claims["exp"] as? Int)
        XCTAssertEqual(exp - iat, 600)
        XCTAssertLessThan(abs(iat - Int(Date().timeIntervalSince1970)), 60)
        XCTAssertNotNil(UUID(uuidString: try XCTUnwrap(claims["session_id"] as? String)))
    }

    func testAnotherSecretIsRejected() throws {
        let token = try mint(["--secret", "right-secret", "--issuer", "http://issuer.test"])
        XCTAssertEqual(try verify(token, secret: "right-secret", issuer: "http://issuer.test").status, 0)
        let wrong = try verify(token, secret: "wrong-secret", issuer: "http://issuer.test")
        XCTAssertEqual(wrong.status, 3, "PyJWT accepted a token under the wrong secret: \(wrong.stdout) \(wrong.stderr)")
    }

    func testDefaultsAndEnvironment() throws {
        // A secret longer than the SHA-256 block (hashed first, RFC 2104), the Supabase CLI's
        // local URL as default issuer, a random sub.
        let secret = String(repeating: "k", count: 100)
        let token = try mint([], environment: ["DEVICEHUB_SUPABASE_JWT_SECRET": secret])
        let result = try verify(token, secret: secret, issuer: "http://127.0.0.1:54321/auth/v1")
        XCTAssertEqual(result.status, 0, result.stderr)
        let claims = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["claims"] as? [String: Any])
        XCTAssertNotNil(UUID(uuidString: try XCTUnwrap(claims["sub"] as? String)))
        XCTAssertEqual(claims["exp"] as? Int, (claims["iat"] as? Int).map { $0 + 3600 })
    }

    func testInvalidArguments() throws {
        for arguments in [[], ["--secret", "s", "--sub", "nope"], ["--secret", "s", "--ttl", "0"],
                          ["--secret", "s", "--issuer", "a", "--supabase-url", "b"]] {
            let result = try ChildProcess.runHubctl(["mint-dev-jwt"] + arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
        }
    }
}
