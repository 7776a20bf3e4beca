import Foundation
import HubAuth
import Testing

/// Tokens and JWKS documents minted by an independent JOSE implementation (PyJWT +
/// cryptography, Tests/peers/jwt_mint.py), once per test process.
///
/// The interpreter is `$DEVICEHUB_TEST_PYTHON` (scripts/test points it at a virtualenv with
/// scripts/test-requirements.txt) or the repository's `.build-test-venv`. A missing interpreter
/// or PyJWT fails the tests: skipping would let a broken environment pass as green.
struct JWTManifest: Decodable, Sendable {
    struct Case: Decodable, Sendable {
        let name: String
        let token: String
        let expect: String
        let reason: String?
        let verifier: String
    }

    let now: Int64
    let issuer: String
    let secret: String
    let user_id: String
    let session_id: String
    let jwks: [String: String]
    let expected_kids: [String]
    let expected_skipped: [String?]
    let cases: [Case]
    let bulk: [String]
    /// The manifest's own bytes, for claims the Swift side compares as JSON (app_metadata).
    var raw = Data()

    private enum CodingKeys: String, CodingKey {
        case now, issuer, secret, user_id, session_id, jwks, expected_kids, expected_skipped, cases, bulk
    }

    func token(_ name: String) throws -> String {
        guard let c = cases.first(where: { $0.name == name }) else { throw FixtureError("no case \(name)") }
        return c.token
    }

    func jwksBytes(_ name: String) -> [UInt8] { Array(jwks[name]!.utf8) }

    var userID: UUID { UUID(uuidString: user_id)! }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum JWTFixtures {
    static var repositoryRoot: URL {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        return dir
    }

    static func interpreter() throws -> String {
        if let p = ProcessInfo.processInfo.environment["DEVICEHUB_TEST_PYTHON"], !p.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: p) else { throw FixtureError("DEVICEHUB_TEST_PYTHON=\(p) is not executable") }
            return p
        }
        let local = repositoryRoot.appendingPathComponent(".build-test-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: local) else {
            throw FixtureError("no Python for the JWT peer: set DEVICEHUB_TEST_PYTHON or create .build-test-venv "
                + "(python3 -m venv .build-test-venv && .build-test-venv/bin/pip install -r scripts/test-requirements.txt)")
        }
        return local
    }

    /// Minted once; every test reads the same manifest.
    static let manifest: Result<JWTManifest, FixtureError> = {
        do {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try interpreter())
            process.arguments = [repositoryRoot.appendingPathComponent("Tests/peers/jwt_mint.py").path]
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            let errors = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                return .failure(FixtureError("jwt_mint.py exited \(process.terminationStatus) (is PyJWT[crypto] installed?): "
                    + String(decoding: errors, as: UTF8.self)))
            }
            var m = try JSONDecoder().decode(JWTManifest.self, from: data)
            m.raw = data
            return .success(m)
        } catch let e as FixtureError {
            return .failure(e)
        } catch {
            return .failure(FixtureError("jwt_mint.py: \(error)"))
        }
    }()

    static func get() throws -> JWTManifest { try manifest.get() }

    /// The verifiers the manifest's cases name.
    static func verifier(_ name: String, _ m: JWTManifest) async throws -> SupabaseJWTVerifier {
        let jwks: String
        var secret: String? = m.secret
        switch name {
        case "default": jwks = "initial"
        case "nosecret":
            jwks = "initial"
            secret = nil
        case "rotated": jwks = "rotated"
        case "new_only": jwks = "new_only"
        default: throw FixtureError("unknown verifier \(name)")
        }
        let keys = try await JWKSKeys.parse(jwks: m.jwksBytes(jwks))
        return try await SupabaseJWTVerifier(
            configuration: SupabaseJWTConfiguration(issuer: m.issuer, hs256Secret: secret), keys: keys)
    }
}
