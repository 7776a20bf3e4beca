import Foundation
import HubIO
@testable import HubMigrations
import HubPostgres
import HubTestSupport
import XCTest

/// The PostgreSQL migrations apply, a second run is a no-op, a changed applied file is refused,
/// concurrent runners serialize; checked with `psql`, an independent client. Also `hubctl`.
final class PostgresMigrationTests: PostgresTestCase {
    /// A fresh database per test, so each starts from nothing.
    private func freshDatabase(_ name: String) throws -> String {
        let server = try requireServer()
        _ = try server.psql("DROP DATABASE IF EXISTS \(name)")
        _ = try server.psql("CREATE DATABASE \(name)")
        return server.url.replacingOccurrences(of: "/postgres?", with: "/\(name)?")
    }

    private func psql(_ url: String, _ sql: String) throws -> String {
        try PostgresTestServer.run(try requireServer().tool("psql"), ["-X", "-Atc", sql, url]).trimmingCharacters(in: .newlines)
    }

    private func runner(_ connection: PostgresConnection, _ migrations: [Migration]? = nil) throws -> MigrationRunner {
        MigrationRunner(migrations: try migrations ?? Migration.postgres, driver: PostgresMigrationDriver(connection: connection))
    }

    func testEmbeddedMigrationsMatchTheFilesOnDisk() throws {
        // The plugin embedded protocol/sql at build time; the checksum is the file's SHA-256.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("protocol/sql")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        let embedded = try Migration.postgres
        XCTAssertEqual(embedded.map { String(format4: $0.version) + "_" + $0.name + ".sql" }, files)
        for (m, f) in zip(embedded, files) {
            let bytes = try Data(contentsOf: dir.appendingPathComponent(f))
            XCTAssertEqual(m.checksum, SHA256.hex(Array(bytes)), f)
            XCTAssertEqual(Array(m.sql.utf8), Array(bytes), f)
        }
        XCTAssertFalse(try Migration.sqlite.isEmpty)
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(String(repeating: "a", count: 1_000_000)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testMigrationsApplyAndASecondRunIsANoOp() async throws {
        let url = try freshDatabase("mig_apply")
        let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loops[0])
        let all = try Migration.postgres
        let applied = try await runner(connection).migrate()
        XCTAssertEqual(applied.map(\.version), all.map(\.version))

        // Checked with psql: recorded versions and checksums, and the tables exist.
        XCTAssertEqual(try psql(url, "select version from devicehub.schema_migrations order by version"), all.map { String($0.version) }.joined(separator: "\n"))
        XCTAssertEqual(try psql(url, "select checksum from devicehub.schema_migrations where version = 1"), all[0].checksum)
        let tables = try psql(url, "select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'devicehub'")
        for t in ["activation_codes", "api_keys", "audit_log", "command_events", "commands", "devices", "diagnostic_sessions", "execution_logs", "org_members", "orgs", "schema_migrations"] {
            XCTAssertTrue(tables.split(separator: ",").contains(Substring(t)), "missing table \(t) in \(tables)")
        }
        let appliedAt = try psql(url, "select applied_at from devicehub.schema_migrations order by version")

        // Second run: nothing applied, nothing rewritten.
        let again = try await runner(connection).migrate()
        XCTAssertEqual(again, [])
        XCTAssertEqual(try psql(url, "select applied_at from devicehub.schema_migrations order by version"), appliedAt)
        XCTAssertEqual(try psql(url, "select count(*) from devicehub.schema_migrations"), "\(all.count)")
        let status = try await runner(connection).status()
        XCTAssertTrue(status.allSatisfy { if case .applied = $0.state { return true }; return false }, "\(status)")
        // The lock was released and the session's statement_timeout restored.
        let awaited1 = try await connection.query("SELECT current_setting('statement_timeout')")[0].decode(String.self, at: 0)
        XCTAssertEqual(awaited1, "30s")
        XCTAssertEqual(try psql(url, "select count(*) from pg_locks where locktype = 'advisory'"), "0")
        await connection.close()
    }

    func testSchemaConstraintsAndQueueIndex() async throws {
        let url = try freshDatabase("mig_schema")
        let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loops[0])
        try await runner(connection).migrate()
        let org = UUID(), device = UUID(), session = UUID(), user = UUID()
        _ = try await connection.query("INSERT INTO devicehub.orgs (id, name, slug) VALUES ($1, 'Acme', 'acme')", [.uuid(org)])
        _ = try await connection.query("INSERT INTO devicehub.org_members (org_id, user_id, role) VALUES ($1, $2, 'approver')", [.uuid(org), .uuid(user)])
        let awaited2 = try await connection.query("SELECT role_rank FROM devicehub.org_members")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited2, 2)
        await assertPostgresError({ try await connection.query("INSERT INTO devicehub.org_members (org_id, user_id, role) VALUES ($1, $2, 'owner')", [.uuid(org), .uuid(UUID())]) }) {
            if case .server(let code, _) = $0 { return code == "23514" }; return false
        }
        _ = try await connection.query("INSERT INTO devicehub.devices (id, org_id, name, metadata) VALUES ($1, $2, 'pump-1', $3)", [.uuid(device), .uuid(org), .json(#"{"site":"x"}"#)])
        // An active device needs a secret hash.
        await assertPostgresError({ try await connection.query("UPDATE devicehub.devices SET state = 'active' WHERE id = $1", [.uuid(device)]) }) {
            if case .server(let code, _) = $0 { return code == "23514" }; return false
        }
        _ = try await connection.query("INSERT INTO devicehub.diagnostic_sessions (id, org_id, device_id, requested_by, reason) VALUES ($1, $2, $3, $4, 'disk full')",
                                       [.uuid(session), .uuid(org), .uuid(device), .uuid(user)])
        for (kind, priority) in [("a", "bulk"), ("b", "default"), ("c", "critical"), ("d", "default")] {
            _ = try await connection.query("""
                INSERT INTO devicehub.commands (org_id, session_id, device_id, kind, priority, state, proposed_by, expires_at)
                VALUES ($1, $2, $3, $4, $5, 'queued', 'test', now() + interval '1 hour')
                """, [.uuid(org), .uuid(session), .uuid(device), .text(kind), .text(priority)])
        }
        // Claim order: class, then FIFO.
        let order = try await connection.query("SELECT kind FROM devicehub.commands WHERE device_id = $1 AND state = 'queued' ORDER BY priority_rank, seq", [.uuid(device)])
        XCTAssertEqual(try order.map { try $0.decode(String.self, at: 0) }, ["c", "b", "d", "a"])
        // The claim query can use the partial index.
        _ = try await connection.query("SET enable_seqscan = off")
        let plan = try await connection.query("EXPLAIN SELECT id FROM devicehub.commands WHERE device_id = $1 AND state = 'queued' ORDER BY priority_rank, seq LIMIT 1", [.uuid(device)])
        let planText = try plan.map { try $0.decode(String.self, at: 0) }.joined(separator: "\n")
        XCTAssertTrue(planText.contains("commands_claim_idx"), planText)
        await connection.close()
    }

    func testChangedAppliedMigrationIsRefused() async throws {
        let url = try freshDatabase("mig_checksum")
        let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loops[0])
        let v1 = Migration(version: 1, name: "one", sql: "CREATE TABLE devicehub.one (a int);")
        try await runner(connection, [v1]).migrate()
        let edited = Migration(version: 1, name: "one", sql: "CREATE TABLE devicehub.one (a bigint);")
        let v2 = Migration(version: 2, name: "two", sql: "CREATE TABLE devicehub.two (a int);")
        do {
            try await runner(connection, [edited, v2]).migrate()
            XCTFail("a changed migration must be refused")
        } catch {
            guard case .checksumMismatch(let list)? = error as? MigrationError else { return XCTFail("\(error)") }
            XCTAssertEqual(list.map(\.version), [1])
        }
        // Nothing else was applied.
        XCTAssertEqual(try psql(url, "select string_agg(version::text, ',') from devicehub.schema_migrations"), "1")
        XCTAssertEqual(try psql(url, "select to_regclass('devicehub.two') is null"), "t")
        await connection.close()
    }

    func testFailingMigrationRollsBackAndStops() async throws {
        let url = try freshDatabase("mig_fail")
        let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loops[0])
        let good = Migration(version: 1, name: "good", sql: "CREATE TABLE devicehub.good (a int);")
        let bad = Migration(version: 2, name: "bad", sql: "CREATE TABLE devicehub.half (a int); SELECT * FROM no_such_table;")
        let later = Migration(version: 3, name: "later", sql: "CREATE TABLE devicehub.later (a int);")
        do {
            try await runner(connection, [good, bad, later]).migrate()
            XCTFail("expected failure")
        } catch {
            guard case .failed(let version, _, let message)? = error as? MigrationError else { return XCTFail("\(error)") }
            XCTAssertEqual(version, 2)
            XCTAssertTrue(message.contains("42P01"), message)
        }
        XCTAssertEqual(try psql(url, "select string_agg(version::text, ',') from devicehub.schema_migrations"), "1")
        XCTAssertEqual(try psql(url, "select to_regclass('devicehub.half') is null and to_regclass('devicehub.later') is null"), "t")
        // The session is usable and unlocked afterwards.
        XCTAssertEqual(try psql(url, "select count(*) from pg_locks where locktype = 'advisory'"), "0")
        let awaited3 = try await connection.query("SELECT 1")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited3, 1)
        await connection.close()
    }

    func testConcurrentRunnersApplyEachMigrationOnce() async throws {
        let url = try freshDatabase("mig_race")
        // A slow first migration widens the window in which a second runner would interfere.
        let slow = Migration(version: 1, name: "slow", sql: "SELECT pg_sleep(0.5); CREATE TABLE devicehub.slow (a int);")
        let next = Migration(version: 2, name: "next", sql: "CREATE TABLE devicehub.next (a int);")
        var connections: [PostgresConnection] = []
        for i in 0..<4 { connections.append(try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loops[i % 2])) }
        let results = try await withThrowingTaskGroup(of: [Int].self) { group in
            for c in connections {
                group.addTask { try await MigrationRunner(migrations: [slow, next], driver: PostgresMigrationDriver(connection: c)).migrate().map(\.version) }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        XCTAssertEqual(results.filter { !$0.isEmpty }, [[1, 2]], "exactly one runner applies, the others find nothing to do: \(results)")
        XCTAssertEqual(try psql(url, "select string_agg(version::text, ',' order by version) from devicehub.schema_migrations"), "1,2")
        for c in connections { await c.close() }
    }

    func testHubctlMigrateAndStatus() async throws {
        let url = try freshDatabase("mig_hubctl")
        let hubctl = try hubctlPath()
        let first = try PostgresTestServer.run(hubctl, ["migrate", "--postgres-url", url])
        XCTAssertTrue(first.contains("applied 0001_initial"), first)
        let second = try PostgresTestServer.run(hubctl, ["migrate", "--postgres-url", url])
        XCTAssertTrue(second.contains("up to date"), second)
        let status = try PostgresTestServer.run(hubctl, ["migrate", "--postgres-url", url, "--status"])
        XCTAssertTrue(status.contains("0001_initial") && status.contains("applied"), status)
        XCTAssertEqual(try psql(url, "select string_agg(version::text, ',' order by version) from devicehub.schema_migrations"),
                       try Migration.postgres.map { String($0.version) }.joined(separator: ","))
        // A server that is not there: a message and exit status 1, no hang.
        XCTAssertThrowsError(try PostgresTestServer.run(hubctl, ["migrate", "--postgres-url", "postgres://x@127.0.0.1:1/x?sslmode=disable"]))
    }

    private func hubctlPath() throws -> String {
        // Built next to the test bundle by `swift build --build-tests` (every product is built).
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("hubctl").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let fallback = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for d in [fallback, fallback.deletingLastPathComponent(), fallback.deletingLastPathComponent().deletingLastPathComponent()] {
            let candidate = d.appendingPathComponent("hubctl").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        XCTFail("hubctl binary not found next to the tests (\(Bundle.main.bundleURL.path)); build it with swift build --build-tests")
        throw PostgresTestServer.Failure(description: "hubctl not found")
    }
}
