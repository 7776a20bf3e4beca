import Foundation
import HubPostgres
import HubTelemetry
import HubTestSupport
import XCTest

/// The pool's limits and failure behaviour: exhaustion fails fast and typed, a dead server makes
/// queries fail quickly and `isHealthy` false, and the pool recovers by itself.
final class PostgresPoolTests: PostgresTestCase {
    func testExhaustedPoolFailsFastWithTypedError() async throws {
        let pool = try makePool {
            $0.maxConnections = 2
            $0.maxWaiters = 1
            $0.acquireTimeout = .milliseconds(300)
        }
        _ = try await pool.query("SELECT 1") // connected
        // Occupy both connections.
        let sleepers = (0..<2).map { _ in Task { try await pool.query("SELECT pg_sleep(2)") } }
        let value1 = await eventually(timeout: 2) { pool.statistics.inUse == 2 }
        XCTAssertTrue(value1)

        // One caller may wait; it gives up after acquireTimeout with .poolExhausted.
        let waiter = Task { () -> (PostgresError?, TimeInterval) in
            let start = Date()
            do { _ = try await pool.query("SELECT 1"); return (nil, Date().timeIntervalSince(start)) } catch { return (error as? PostgresError, Date().timeIntervalSince(start)) }
        }
        let value2 = await eventually(timeout: 1) { pool.statistics.waiters == 1 }
        XCTAssertTrue(value2)
        // The wait queue is full: the next caller fails at once.
        let start = Date()
        await assertPostgresError({ try await pool.query("SELECT 1") }) {
            if case .poolExhausted = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.1)

        let (waitError, waited) = await waiter.value
        guard case .poolExhausted? = waitError else { return XCTFail("waiter got \(String(describing: waitError))") }
        XCTAssertGreaterThanOrEqual(waited, 0.25)
        XCTAssertLessThan(waited, 1.0)

        for s in sleepers { _ = try await s.value }
        // Free again.
        let value3 = try await pool.query("SELECT 5")[0].decode(Int.self, at: 0)
        XCTAssertEqual(value3, 5)
        await pool.shutdown()
    }

    func testWaitersAreServedInTurnWhenConnectionsFree() async throws {
        let pool = try makePool {
            $0.maxConnections = 2
            $0.acquireTimeout = .seconds(5)
        }
        let start = Date()
        // 8 statements of 0.2 s over 2 connections: ~0.8 s, all succeed.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try await pool.query("SELECT pg_sleep(0.2)") } }
            try await group.waitForAll()
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(elapsed, 0.75)
        XCTAssertLessThan(elapsed, 3)
        XCTAssertLessThanOrEqual(pool.statistics.open, 2)
        await pool.shutdown()
    }

    func testServerKilledDuringQueriesFailsFastThenRecoversByItself() async throws {
        let server = try requireServer()
        let registry = MetricsRegistry(loops: loops.count)
        let pool = try makePool({
            $0.maxConnections = 4
            $0.minConnections = 2
            $0.acquireTimeout = .seconds(1)
            $0.reconnectBackoffBase = .milliseconds(50)
            $0.reconnectBackoffMax = .milliseconds(500)
        }, metrics: registry)
        let value4 = await eventually(timeout: 5) { pool.isHealthy }
        XCTAssertTrue(value4)

        // A stream of queries from 4 tasks, each recording how long every call took and how it
        // ended, until told to stop.
        final class Log: @unchecked Sendable {
            let lock = NSLock()
            var outcomes: [(ok: Bool, error: PostgresError?, seconds: Double)] = []
            var stop = false
            func add(_ ok: Bool, _ e: PostgresError?, _ s: Double) { lock.lock(); outcomes.append((ok, e, s)); lock.unlock() }
            var stopped: Bool { lock.lock(); defer { lock.unlock() }; return stop }
            func snapshot() -> [(ok: Bool, error: PostgresError?, seconds: Double)] { lock.lock(); defer { lock.unlock() }; return outcomes }
            func finish() { lock.lock(); stop = true; lock.unlock() }
        }
        let log = Log()
        let streams = (0..<4).map { _ in
            Task {
                while !log.stopped {
                    let t0 = Date()
                    do {
                        _ = try await pool.query("SELECT pg_sleep(0.01), $1::int", [1])
                        log.add(true, nil, Date().timeIntervalSince(t0))
                    } catch {
                        log.add(false, error as? PostgresError, Date().timeIntervalSince(t0))
                        try? await Task.sleep(nanoseconds: 5_000_000)
                    }
                }
            }
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        let okBefore = log.snapshot().contains { $0.ok }
        XCTAssertTrue(okBefore, "queries should succeed before the kill")
        let reconnectsBefore = try XCTUnwrap(MetricsText.value(registry.render(), "devicehub_postgres_reconnects_total"), registry.render())

        let killedAt = Date()
        try server.kill()
        let value5 = await eventually(timeout: 1) { !pool.isHealthy }
        XCTAssertTrue(value5, "isHealthy should turn false within 1 s of the kill")
        try await Task.sleep(nanoseconds: 1_000_000_000)

        let downSnapshot = log.snapshot()
        let afterKill = downSnapshot.count
        let failures = downSnapshot.filter { !$0.ok }
        XCTAssertFalse(failures.isEmpty, "queries must fail while the server is down")
        for f in failures {
            switch f.error {
            case .connection?, .timeout?: break
            default: XCTFail("untyped or unexpected failure while down: \(String(describing: f.error))")
            }
            XCTAssertLessThan(f.seconds, 1.5, "a failing query must not hang (took \(f.seconds) s)")
        }
        XCTAssertFalse(pool.isHealthy)
        XCTAssertGreaterThan(afterKill, failures.count, "sanity")

        // Restart: the pool reconnects by itself (no call needed), within backoff max + connect.
        try server.startServer()
        let value6 = await eventually(timeout: 10) { pool.isHealthy }
        XCTAssertTrue(value6, "pool should reconnect after restart")
        let recoveredAt = Date()
        let value7 = try await pool.query("SELECT 11")[0].decode(Int.self, at: 0)
        XCTAssertEqual(value7, 11)
        try await Task.sleep(nanoseconds: 300_000_000)
        let okAfterRestart = log.snapshot()[afterKill...].contains { $0.ok }
        XCTAssertTrue(okAfterRestart, "the query stream should succeed again after the restart")
        log.finish()
        for s in streams { await s.value }

        let text = registry.render()
        let reconnects = Int((MetricsText.value(text, "devicehub_postgres_reconnects_total") ?? -1) - reconnectsBefore)
        XCTAssertGreaterThan(reconnects, 0, "the reconnects after the kill must be counted. \(text)")
        XCTAssertTrue(text.contains("devicehub_postgres_errors_total{kind=\"connection\"}"))
        XCTAssertTrue(text.contains("devicehub_postgres_up 1"))
        print("fault test: down for \(String(format: "%.2f", recoveredAt.timeIntervalSince(killedAt))) s, \(failures.count) failed calls, max failing call \(String(format: "%.3f", failures.map(\.seconds).max() ?? 0)) s, \(reconnects) reconnect attempts")
        await pool.shutdown()
    }

    func testFirstConnectToDeadServerFailsFastAndIsUnhealthy() async throws {
        _ = try requireServer()
        var config = PostgresPoolConfiguration(url: "postgres://nobody@127.0.0.1:1/db?sslmode=disable")
        config.acquireTimeout = .seconds(5)
        let pool = PostgresPool(configuration: config, loops: loops)
        let start = Date()
        await assertPostgresError({ try await pool.query("SELECT 1") }) {
            if case .connection = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        XCTAssertFalse(pool.isHealthy)
        await pool.shutdown()
    }

    func testTerminatedBackendIsReplaced() async throws {
        let server = try requireServer()
        let pool = try makePool { $0.maxConnections = 2; $0.minConnections = 2 }
        let backends = "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity WHERE application_name = 'devicehub'"
        let value8 = await eventually(timeout: 5) { pool.statistics.open == 2 && pool.statistics.idle == 2 }
        XCTAssertTrue(value8)
        let before = Set(try server.psql(backends).split(separator: ","))
        XCTAssertEqual(before.count, 2)
        _ = try server.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'devicehub'")
        // Idle connections see the server close them at once, and the pool opens new ones by
        // itself: two live backends, none of them the old ones.
        let replaced = await eventually(timeout: 5) {
            let now = Set(((try? server.psql(backends)) ?? "").split(separator: ","))
            return now.count == 2 && now.isDisjoint(with: before) && pool.isHealthy && pool.statistics.idle == 2
        }
        XCTAssertTrue(replaced, "connections were not replaced")
        let v = try await pool.query("SELECT 3")[0].decode(Int.self, at: 0)
        XCTAssertEqual(v, 3)
        await pool.shutdown()
    }

    func testMetricsAreExported() async throws {
        let registry = MetricsRegistry(loops: loops.count)
        let pool = try makePool({ $0.maxConnections = 2 }, metrics: registry)
        for i in 0..<10 { _ = try await pool.query("SELECT $1::int", [.int(Int64(i))]) }
        _ = try? await pool.query("SELECT 1/0")
        let text = registry.render()
        XCTAssertTrue(text.contains("devicehub_postgres_query_seconds_count 11"), text)
        XCTAssertTrue(text.contains("devicehub_postgres_errors_total{kind=\"server\"} 1"), text)
        XCTAssertTrue(text.contains("devicehub_postgres_connections{state=\"in_use\"} 0"), text)
        XCTAssertTrue(text.contains("devicehub_postgres_connections{state=\"idle\"}"), text)
        XCTAssertTrue(text.contains("devicehub_postgres_up 1"), text)
        await pool.shutdown()
        XCTAssertFalse(pool.isHealthy)
        await assertPostgresError({ try await pool.query("SELECT 1") }) {
            if case .connection = $0 { return true }
            return false
        }
    }
}
