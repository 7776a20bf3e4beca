import Foundation
import HubPostgres
import HubTestSupport
import XCTest

/// Transactions commit or roll back as a unit; statements that run too long end as a typed
/// timeout quickly, and the connection is reusable afterwards.
final class PostgresTransactionTimeoutTests: PostgresTestCase {
    struct Boom: Error {}

    func testTransactionCommitsAndRollsBack() async throws {
        let server = try requireServer()
        let pool = try makePool { $0.maxConnections = 2 }
        _ = try await pool.query("CREATE TABLE t (id int PRIMARY KEY, note text)")

        // Commit: both rows or none.
        let n = try await pool.transaction { conn in
            _ = try await conn.query("INSERT INTO t VALUES ($1, $2)", [1, "one"])
            _ = try await conn.query("INSERT INTO t VALUES ($1, $2)", [2, "two"])
            return try await conn.query("SELECT count(*) FROM t")[0].decode(Int.self, at: 0)
        }
        XCTAssertEqual(n, 2)
        XCTAssertEqual(try server.psql("SELECT string_agg(note, ',' ORDER BY id) FROM t"), "one,two")

        // A thrown Swift error rolls back and is rethrown as is.
        do {
            try await pool.transaction { conn in
                _ = try await conn.query("INSERT INTO t VALUES ($1, $2)", [3, "three"])
                throw Boom()
            }
            XCTFail("expected Boom")
        } catch is Boom {}
        XCTAssertEqual(try server.psql("SELECT count(*) FROM t"), "2")

        // A server error rolls back the rows before it.
        await assertPostgresError({
            try await pool.transaction { conn in
                _ = try await conn.query("INSERT INTO t VALUES ($1, $2)", [4, "four"])
                _ = try await conn.query("INSERT INTO t VALUES ($1, $2)", [1, "duplicate"])
            }
        }) { if case .server(let code, _) = $0 { return code == "23505" }; return false }
        XCTAssertEqual(try server.psql("SELECT count(*) FROM t"), "2")

        // An error swallowed inside the body: COMMIT turns into ROLLBACK, reported, not silent.
        await assertPostgresError({
            try await pool.transaction { conn in
                _ = try await conn.query("INSERT INTO t VALUES ($1, $2)", [5, "five"])
                _ = try? await conn.query("SELECT 1/0")
            }
        }) { if case .server(let code, _) = $0 { return code == "25P02" }; return false }
        XCTAssertEqual(try server.psql("SELECT count(*) FROM t"), "2")

        // The connections are clean afterwards: none is left idle inside a transaction.
        for _ in 0..<4 { _ = try await pool.query("SELECT 1") }
        XCTAssertEqual(try server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'devicehub' AND state LIKE 'idle in transaction%'"), "0")
        await pool.shutdown()
    }

    func testOpenTransactionLeftByAQueryIsRolledBackOnRelease() async throws {
        let server = try requireServer()
        let pool = try makePool { $0.maxConnections = 1 }
        _ = try await pool.query("CREATE TABLE leak (a int)")
        // A bare BEGIN through the pool must not leave the (only) connection inside a
        // transaction that swallows the next caller's statements: the pool rolls it back on
        // release, so the INSERT below commits on its own and another client sees it.
        _ = try await pool.query("BEGIN")
        _ = try await pool.query("INSERT INTO leak VALUES (1)")
        XCTAssertEqual(try server.psql("SELECT count(*) FROM leak"), "1")
        XCTAssertEqual(try server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'devicehub' AND state LIKE 'idle in transaction%'"), "0")
        await pool.shutdown()
    }

    func testStatementTimeoutIsTypedAndQuick() async throws {
        let pool = try makePool {
            $0.maxConnections = 1
            $0.connection.statementTimeout = .milliseconds(300)
        }
        let start = Date()
        await assertPostgresError({ try await pool.query("SELECT pg_sleep(10)") }) {
            if case .timeout = $0 { return true }
            return false
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertLessThan(elapsed, 2.0, "the server's statement_timeout should end it after ~0.3 s")
        // The same (only) connection is still usable.
        let awaited3 = try await pool.query("SELECT 7")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited3, 7)
        await pool.shutdown()
    }

    func testClientDeadlineCancelsWhenTheServerDoesNot() async throws {
        let server = try requireServer()
        let pool = try makePool {
            $0.maxConnections = 1
            $0.connection.statementTimeout = .zero // server-side timeout off: only the client deadline
            $0.connection.queryTimeout = .milliseconds(400)
        }
        let start = Date()
        await assertPostgresError({ try await pool.query("SELECT pg_sleep(30)") }) {
            if case .timeout = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5, "client deadline 0.4 s + sweep 0.1 s")
        // The cancel request reached the server: the connection drains and is reused.
        let value = try await pool.query("SELECT 8")[0].decode(Int.self, at: 0)
        XCTAssertEqual(value, 8)
        XCTAssertEqual(try server.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'"), "0")
        XCTAssertEqual(pool.statistics.open, 1)
        await pool.shutdown()
    }

    func testPerQueryTimeoutOverride() async throws {
        let pool = try makePool { $0.maxConnections = 1 }
        let start = Date()
        await assertPostgresError({ try await pool.query("SELECT pg_sleep(5)", timeout: .milliseconds(200)) }) {
            if case .timeout = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5)
        let awaited4 = try await pool.query("SELECT 9")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited4, 9)
        await pool.shutdown()
    }
}
