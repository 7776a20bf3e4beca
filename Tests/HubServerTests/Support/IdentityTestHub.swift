import Foundation
import HubAuth
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// A hub with identity configured (admin token, HS256 Supabase secret), on the embedded store,
/// on real Redis + PostgreSQL or on a real three-master Redis Cluster + PostgreSQL, and the
/// calls the identity tests make against it.
final class IdentityTestHub {
    enum Backend: String, CaseIterable { case embedded, redisPostgres, redisCluster }

    static let adminToken = "test-admin-token-0123456789abcdef"
    static let jwtSecret = "test-supabase-jwt-secret-0123456789abcdef"
    static let supabaseURL = "https://project-ref.supabase.co"

    let server: HubServer
    let logs: LogSinkBox
    private var redis: RedisTestServer?
    private var cluster: RedisClusterTestServer?
    private(set) var postgres: PostgresTestServer?

    final class LogSinkBox { let lines: () -> [String]; init(_ l: @escaping () -> [String]) { lines = l } }

    init(_ backend: Backend, configure: (inout ServerConfig) -> Void = { _ in }) async throws {
        var redis: RedisTestServer?, cluster: RedisClusterTestServer?, postgres: PostgresTestServer?
        if backend == .redisPostgres {
            redis = try RedisTestServer.startPrivate()
            postgres = try PostgresTestServer.start()
        }
        if backend == .redisCluster {
            // A cluster of its own: the hub's keys live in the default namespace.
            cluster = try RedisClusterTestServer.start()
            postgres = try PostgresTestServer.start()
        }
        let redisURL = redis?.url ?? cluster?.url
        let (server, sink) = try startTestServer {
            $0.adminToken = Self.adminToken
            $0.supabaseJWTSecret = Self.jwtSecret
            $0.supabaseURL = Self.supabaseURL
            if let redisURL, let postgres {
                $0.redisURL = redisURL
                $0.postgresURL = postgres.url
                $0.hashKey = testHashKey
            }
            configure(&$0)
        }
        self.server = server
        self.redis = redis
        self.cluster = cluster
        self.postgres = postgres
        logs = LogSinkBox { sink.lines }
        try await waitUntilReady(server)
    }

    func stop() {
        server.drain(gracePeriod: 1)
        redis?.stop()
        cluster?.stop()
        postgres?.stop()
    }

    var port: Int { server.httpPort }
    /// The networked backend's URLs (nil on the embedded store), for a second node on them.
    var redisURL: String? { redis?.url ?? cluster?.url }
    var postgresURL: String? { postgres?.url }

    /// Another node of the same hub (same Redis and PostgreSQL), in this process.
    func secondNode(nodeID: String) async throws -> HubServer {
        let (server, _) = try startTestServer {
            $0.adminToken = Self.adminToken
            $0.supabaseJWTSecret = Self.jwtSecret
            $0.supabaseURL = Self.supabaseURL
            $0.redisURL = redisURL
            $0.postgresURL = postgresURL
            $0.hashKey = testHashKey
            $0.nodeID = nodeID
        }
        try await waitUntilReady(server)
        return server
    }
    var stores: Stores { server.stores! }

    // MARK: HTTP

    func request(_ method: String, _ path: String, bearer: String? = nil, apiKey: String? = nil, json: Any? = nil,
                 file: StaticString = #filePath, line: UInt = #line) throws -> TestClient.Response {
        var headers: [String: String] = [:]
        if let bearer { headers["Authorization"] = "Bearer \(bearer)" }
        if let apiKey { headers["X-API-Key"] = apiKey }
        var body: String?
        if let json {
            headers["Content-Type"] = "application/json"
            body = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
        }
        return try TestClient(port: port).request(method, path, headers: headers, body: body)
    }

    /// A request that must answer `status`; returns the JSON object.
    @discardableResult
    func expect(_ status: Int, _ method: String, _ path: String, bearer: String? = nil, apiKey: String? = nil, json: Any? = nil,
                file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try request(method, path, bearer: bearer, apiKey: apiKey, json: json)
        XCTAssertEqual(r.status, status, "\(method) \(path): \(r.text)", file: file, line: line)
        return r.json ?? [:]
    }

    // MARK: set-up through the public API

    /// An org with `members` (user id → role), made through the admin API.
    func makeOrg(_ name: String, members: [UUID: MemberRole] = [:]) throws -> UUID {
        let org = try expect(201, "POST", "/api/v1/admin/orgs", bearer: Self.adminToken, json: ["name": name])
        let id = try XCTUnwrap(UUID(uuidString: org["id"] as? String ?? ""))
        for (user, role) in members {
            try expect(201, "POST", "/api/v1/admin/orgs/\(id.uuidString)/members", bearer: Self.adminToken,
                       json: ["user_id": user.uuidString, "role": role.rawValue])
        }
        return id
    }

    /// Provisions a device as `user` and registers it; returns its id and secret.
    func makeDevice(org: UUID, as user: UUID, name: String = "pump") throws -> (id: UUID, secret: String) {
        let p = try expect(201, "POST", "/api/v1/customer/devices/provision", bearer: Self.jwt(user), json: ["org_id": org.uuidString, "name": name])
        let code = try XCTUnwrap(p["activation_code"] as? String)
        let r = try expect(201, "POST", "/api/v1/device/register", json: ["activation_code": code, "agent_version": "1.0"])
        return (try XCTUnwrap(UUID(uuidString: r["device_id"] as? String ?? "")), try XCTUnwrap(r["device_secret"] as? String))
    }

    func deviceToken(_ id: UUID, _ secret: String) throws -> String {
        let r = try expect(200, "POST", "/api/v1/device/auth", json: ["device_id": id.uuidString, "device_secret": secret])
        return try XCTUnwrap(r["token"] as? String)
    }

    // MARK: JWTs

    /// An HS256 Supabase access token for `user` (claims as Supabase issues them).
    static func jwt(_ user: UUID, expiresIn: Int = 3600, extra: [String: Any] = [:]) -> String {
        let now = Int(Date().timeIntervalSince1970)
        var claims: [String: Any] = ["sub": user.uuidString.lowercased(), "aud": "authenticated", "role": "authenticated",
                                     "iss": supabaseURL + "/auth/v1", "iat": now, "exp": now + expiresIn, "email": "u@example.com"]
        for (k, v) in extra { claims[k] = v }
        let header = Base64URLText.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URLText.encode(Array(try! JSONSerialization.data(withJSONObject: claims)))
        let input = header + "." + payload
        let mac = HubCrypto.hmacSHA256(key: Array(jwtSecret.utf8), Array(input.utf8))
        return input + "." + Base64URLText.encode(mac)
    }

    // MARK: sockets (python-websockets as the client)

    struct SocketResult {
        var handshake: Int?
        var received: [[String: Any]]
        var closeCode: Int?
        var error: String?
    }

    /// Starts a scripted socket session; `finish()` waits for its result.
    final class Session {
        let process: Process
        let out = Pipe(), err = Pipe()
        init(port: Int, path: String, steps: [[String: Any]], headers: [String: String]) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: try PythonPeer.interpreter())
            var args = [PythonPeer.script("ws_session.py"), "ws://127.0.0.1:\(port)\(path)",
                        String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)]
            for (k, v) in headers { args += ["--header", "\(k): \(v)"] }
            // Every message the hub sends is checked against the documented JSON Schemas.
            args += ["--schemas", PythonPeer.repositoryRoot.appendingPathComponent("protocol/ws").path]
            process.arguments = args
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }

        /// Waits for the `{"ready": true}` step.
        func waitUntilReady(timeout: Double = 15) throws {
            let deadline = Date().addingTimeInterval(timeout)
            var seen = Data()
            while Date() < deadline {
                seen.append(err.fileHandleForReading.availableData)
                if String(decoding: seen, as: UTF8.self).contains("READY") { return }
                if !process.isRunning { break }
                usleep(10_000)
            }
            throw TestError("socket session not ready: \(String(decoding: seen, as: UTF8.self))")
        }

        func finish(timeout: Double = 30, file: StaticString = #filePath, line: UInt = #line) throws -> SocketResult {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { process.terminate(); throw TestError("socket session timed out") }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TestError("socket session printed \(String(decoding: data, as: UTF8.self))")
            }
            let schemaErrors = obj["schema_errors"] as? [String] ?? ["no schema_errors in \(obj)"]
            XCTAssertEqual(schemaErrors, [], "messages outside protocol/ws", file: file, line: line)
            return SocketResult(handshake: obj["handshake"] as? Int, received: obj["received"] as? [[String: Any]] ?? [],
                                closeCode: obj["close_code"] as? Int, error: obj["error"] as? String)
        }
    }

    func socket(_ path: String, steps: [[String: Any]], bearer: String? = nil) throws -> Session {
        try Session(port: port, path: path, steps: steps, headers: bearer.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }
}

/// The parts of a problem document that must not tell a foreign record from a missing one.
func problemShape(_ json: [String: Any]) -> [String] {
    ["status", "code", "title", "type", "detail"].map { "\($0)=\(json[$0].map { "\($0)" } ?? "nil")" }
}
