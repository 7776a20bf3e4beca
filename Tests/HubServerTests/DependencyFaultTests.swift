import Foundation
import HubTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The hub with real Redis and PostgreSQL that die under it and come back: `/readyz` turns 503
/// within a second and says which dependency is down, every request is still answered at once
/// (no hang while a dependency is gone), and the hub reconnects by itself.
final class DependencyFaultTests: XCTestCase {
    func testReadinessFollowsRedisAndPostgresDyingAndReturning() throws {
        let redis = try RedisTestServer.startPrivate()
        defer { redis.stop() }
        let postgres = try PostgresTestServer.start()
        defer { postgres.stop() }
        guard !postgres.external else { return XCTFail("this test stops PostgreSQL; unset DEVICEHUB_TEST_POSTGRES_URL") }

        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--loops", "2",
                                             "--redis-url", redis.url, "--postgres-url", postgres.url, "--hash-key", testHashKey])
        defer { hub.signal(SIGKILL) }
        let port = try hub.waitUntilListening()

        XCTAssertEqual(try readiness(port, until: { $0.status == 200 }).status, 200, hub.log)
        // Recoveries are counted where an operator looks: read before each fault, compare after.
        let redisReconnectsBefore = MetricsText.sum(try metrics(port), "devicehub_redis_reconnects_total")

        // Redis killed (SIGKILL: no clean shutdown): 503 naming redis, PostgreSQL still up.
        redis.kill()
        var r = try readiness(port, until: { $0.checks["redis"] == "down" })
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.checks["redis"], "down")
        XCTAssertEqual(r.checks["postgres"], "up")
        XCTAssertLessThan(r.elapsed, 2.0, "readiness must notice a dead Redis quickly")
        try redis.launch()
        r = try readiness(port, until: { $0.status == 200 })
        XCTAssertEqual(r.status, 200, "the hub must reconnect to Redis by itself. \(hub.log)")
        var text = try metrics(port)
        XCTAssertGreaterThan(MetricsText.sum(text, "devicehub_redis_reconnects_total"), redisReconnectsBefore, text)
        let postgresReconnectsBefore = MetricsText.sum(text, "devicehub_postgres_reconnects_total")

        // PostgreSQL stopped the hard way (immediate: like a crash): 503 naming postgres.
        try postgres.kill()
        r = try readiness(port, until: { $0.checks["postgres"] == "down" })
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.checks["postgres"], "down")
        XCTAssertEqual(r.checks["redis"], "up")
        XCTAssertLessThan(r.elapsed, 3.0, "readiness must notice a dead PostgreSQL quickly")
        try postgres.startServer()
        r = try readiness(port, until: { $0.status == 200 })
        XCTAssertEqual(r.status, 200, "the hub must reconnect to PostgreSQL by itself. \(hub.log)")

        text = try metrics(port)
        XCTAssertGreaterThan(MetricsText.sum(text, "devicehub_postgres_reconnects_total"), postgresReconnectsBefore, text)

        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 10), 0, hub.log)
    }

    private func metrics(_ port: Int) throws -> String {
        String(decoding: try TestClient(port: port).request("GET", "/metrics").body, as: UTF8.self)
    }

    private struct Readiness {
        var status: Int
        var checks: [String: String]
        /// Seconds from the first poll to this answer.
        var elapsed: Double
    }

    /// Polls `/readyz` every 50 ms (each request on a new connection, each answered within the
    /// client's 5 s timeout or the test fails) until `done` holds or 15 s pass.
    private func readiness(_ port: Int, until done: (Readiness) -> Bool) throws -> Readiness {
        let start = Date()
        var last = Readiness(status: 0, checks: [:], elapsed: 0)
        while Date().timeIntervalSince(start) < 15 {
            let asked = Date()
            let response = try TestClient(port: port).request("GET", "/readyz")
            XCTAssertLessThan(Date().timeIntervalSince(asked), 1.0, "/readyz must answer at once, dependency or not")
            last = Readiness(status: response.status, checks: response.json?["checks"] as? [String: String] ?? [:],
                             elapsed: Date().timeIntervalSince(start))
            if done(last) { return last }
            usleep(50_000)
        }
        return last
    }
}
