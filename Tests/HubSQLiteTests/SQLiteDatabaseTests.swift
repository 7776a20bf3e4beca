import Foundation
import HubMigrations
import HubSQLite
import XCTest

/// The embedded store's SQLite database: bad input round-trips unchanged, WAL, durability across
/// reopen, transactions, the dedicated thread, migrations.
final class SQLiteDatabaseTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("devicehub-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private var path: String { dir.appendingPathComponent("store.sqlite").path }

    static let nasty: [String] = [
        "'; DROP TABLE x; --",
        "Robert'); DROP TABLE students;--",
        "\"double\" 'single' `back` ?1 :name @p $1",
        "back\\slash \\\\ \\x00 \\'",
        "nul\u{0}inside\u{0}",
        "\u{0}",
        "ünïcödé 日本語 🚀",
        "",
        String(repeating: "x'\"\\\u{0};", count: (1 << 20) / 5), // ~1 MiB with NULs
    ]

    func testBadInputRoundTripsUnchanged() async throws {
        let db = try await SQLiteDatabase.open(path: path)
        try await db.execute("CREATE TABLE x (id INTEGER PRIMARY KEY, t TEXT, b BLOB)")
        var random = SystemRandomNumberGenerator()
        let blobs: [[UInt8]] = [[0], [0, 0, 0], Array(0...255), [], (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }]
        for (i, s) in Self.nasty.enumerated() {
            try await db.execute("INSERT INTO x (id, t, b) VALUES (?1, ?2, ?3)", [.integer(Int64(i)), .text(s), .blob(blobs[i % blobs.count])])
            let rows = try await db.query("SELECT t, b, length(CAST(t AS BLOB)), t = ?2 FROM x WHERE id = ?1", [.integer(Int64(i)), .text(s)])
            XCTAssertEqual(try rows[0].decode(String.self, at: 0), s, "text #\(i)")
            XCTAssertEqual(try rows[0].decode([UInt8].self, at: 1), blobs[i % blobs.count], "blob #\(i)")
            XCTAssertEqual(try rows[0].decode(Int.self, at: 2), s.utf8.count, "stored byte length #\(i)")
            XCTAssertEqual(try rows[0].decode(Bool.self, at: 3), true, "comparison #\(i)")
        }
        // The table survived; an empty blob stays a blob, NULL stays NULL.
        let awaited1 = try await db.query("SELECT count(*) FROM x")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited1, Self.nasty.count)
        let awaited2 = try await db.query("SELECT typeof(b) FROM x WHERE id = 3")[0].decode(String.self, at: 0)
        XCTAssertEqual(awaited2, "blob")
        try await db.execute("INSERT INTO x (id, t, b) VALUES (?1, ?2, ?3)", [.integer(100), nil, nil])
        let nulls = try await db.query("SELECT t, b FROM x WHERE id = 100")
        XCTAssertNil(try nulls[0].decode(String?.self, at: 0))
        XCTAssertEqual(nulls[0][1], .null)
        await db.close()
    }

    func testWALAndReopenKeepsData() async throws {
        do {
            let db = try await SQLiteDatabase.open(path: path)
            let awaited3 = try await db.query("PRAGMA journal_mode")[0].decode(String.self, at: 0)
            XCTAssertEqual(awaited3, "wal")
            let awaited4 = try await db.query("PRAGMA foreign_keys")[0].decode(Int.self, at: 0)
            XCTAssertEqual(awaited4, 1)
            let awaited5 = try await db.query("PRAGMA busy_timeout")[0].decode(Int.self, at: 0)
            XCTAssertEqual(awaited5, 5000)
            try await db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
            try await db.execute("INSERT INTO kv VALUES (?1, ?2)", ["key", .blob([0, 1, 2])])
            XCTAssertTrue(FileManager.default.fileExists(atPath: path + "-wal"), "WAL file next to the database")
            await db.close()
        }
        // A closed database answers calls with a typed error, not a hang.
        let closed = try await SQLiteDatabase.open(path: path)
        await closed.close()
        do { _ = try await closed.query("SELECT 1"); XCTFail("closed database answered") } catch { XCTAssertEqual(error.code, 21) }

        let reopened = try await SQLiteDatabase.open(path: path)
        let awaited6 = try await reopened.query("SELECT v FROM kv WHERE k = ?1", ["key"])[0].decode([UInt8].self, at: 0)
        XCTAssertEqual(awaited6, [0, 1, 2])
        await reopened.close()
    }

    func testTransactionsCommitAndRollBack() async throws {
        struct Boom: Error {}
        let db = try await SQLiteDatabase.open(path: path)
        try await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
        try await db.transaction { conn in
            try conn.execute("INSERT INTO t VALUES (1, 'a')")
            try conn.execute("INSERT INTO t VALUES (2, 'b')")
        }
        do {
            try await db.transaction { conn in
                try conn.execute("INSERT INTO t VALUES (3, 'c')")
                throw Boom()
            }
            XCTFail("expected Boom")
        } catch is Boom {}
        do {
            try await db.transaction { conn in
                try conn.execute("INSERT INTO t VALUES (4, 'd')")
                try conn.execute("INSERT INTO t VALUES (1, 'duplicate')")
            }
            XCTFail("expected a constraint error")
        } catch let error as SQLiteError {
            XCTAssertTrue(error.isConstraintViolation, "\(error)")
            XCTAssertEqual(error.code, 1555) // SQLITE_CONSTRAINT_PRIMARYKEY
        }
        let awaited7 = try await db.query("SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY id)")[0].decode(String.self, at: 0)
        XCTAssertEqual(awaited7, "1,2")
        // Autocommit again afterwards.
        let awaited8 = try await db.withConnection { $0.isAutocommit }
        XCTAssertTrue(awaited8)
        await db.close()
    }

    func testCallsFromManyTasksAreSerializedOnOneThreadAndStatementsAreCached() async throws {
        let db = try await SQLiteDatabase.open(path: path)
        try await db.execute("CREATE TABLE c (n INTEGER)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<500 { group.addTask { try await db.execute("INSERT INTO c VALUES (?1)", [.integer(Int64(i))]) } }
            try await group.waitForAll()
        }
        let awaited9 = try await db.query("SELECT sum(n) FROM c")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited9, (0..<500).reduce(0, +))
        // Every call ran on the same (dedicated) thread, whatever task it came from.
        let threads = try await withThrowingTaskGroup(of: UInt.self) { group in
            for _ in 0..<50 { group.addTask { try await db.withConnection { _ in UInt(pthread_self()) } } }
            return try await group.reduce(into: Set<UInt>()) { $0.insert($1) }
        }
        XCTAssertEqual(threads.count, 1)
        let prepared = try await db.withConnection { $0.statementsPrepared }
        XCTAssertLessThanOrEqual(prepared, 4, "the INSERT was compiled once, not 500 times")
        await db.close()
    }

    func testTypedDecodingAndErrors() async throws {
        let db = try await SQLiteDatabase.open(path: path)
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_700_000_000.123)
        let row = try await db.query("SELECT ?1 AS id, ?2 AS at, ?3 AS yes, 2.5 AS r, NULL AS n, 'x' AS s", [.uuid(id), .date(when), .bool(true)])[0]
        XCTAssertEqual(try row.decode(UUID.self, column: "id"), id)
        XCTAssertEqual(try row.decode(Date.self, column: "at").timeIntervalSince1970, when.timeIntervalSince1970, accuracy: 0.0005)
        XCTAssertEqual(try row.decode(Bool.self, column: "yes"), true)
        XCTAssertEqual(try row.decode(Double.self, column: "r"), 2.5)
        XCTAssertNil(try row.decode(Int?.self, column: "n"))
        XCTAssertThrowsError(try row.decode(Int.self, column: "n"))
        XCTAssertThrowsError(try row.decode(Int.self, column: "s"))
        XCTAssertThrowsError(try row.decode(Int.self, column: "missing"))
        do { _ = try await db.query("SELEC 1"); XCTFail() } catch { XCTAssertEqual(error.primaryCode, 1) }
        do { _ = try await db.query("SELECT ?1, ?2", [1]); XCTFail() } catch { XCTAssertEqual(error.code, 25) } // SQLITE_RANGE
        await db.close()
    }

    func testMigrationsApplyOnceAndRefuseChangedFiles() async throws {
        let db = try await SQLiteDatabase.open(path: path)
        let all = try Migration.sqlite
        let first = try await MigrationRunner(migrations: all, driver: SQLiteMigrationDriver(database: db)).migrate()
        XCTAssertEqual(first.map(\.version), all.map(\.version))
        let second = try await MigrationRunner(migrations: all, driver: SQLiteMigrationDriver(database: db)).migrate()
        XCTAssertEqual(second, [])
        let tables = try await db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map { try $0.decode(String.self, at: 0) }
        for t in ["activation_codes", "api_keys", "audit_log", "command_events", "commands", "devices", "diagnostic_sessions", "execution_logs", "org_members", "orgs", "schema_migrations"] {
            XCTAssertTrue(tables.contains(t), "missing \(t) in \(tables)")
        }
        // Foreign keys and checks are enforced.
        do {
            try await db.execute("INSERT INTO devices (id, org_id, name) VALUES ('d', 'no-such-org', 'n')")
            XCTFail("foreign key not enforced")
        } catch { XCTAssertEqual(error.code, 787) } // SQLITE_CONSTRAINT_FOREIGNKEY
        try await db.execute("INSERT INTO orgs (id, name, slug) VALUES ('o', 'Org', 'org')")
        do {
            try await db.execute("INSERT INTO org_members (org_id, user_id, role) VALUES ('o', 'u', 'owner')")
            XCTFail("check not enforced")
        } catch { XCTAssertEqual(error.code, 275) } // SQLITE_CONSTRAINT_CHECK
        await db.close()

        // Reopen: still applied; an edited applied file is refused.
        let reopened = try await SQLiteDatabase.open(path: path)
        let edited = [Migration(version: all[0].version, name: all[0].name, sql: all[0].sql + "\n-- edited\n")]
        do {
            try await MigrationRunner(migrations: edited, driver: SQLiteMigrationDriver(database: reopened)).migrate()
            XCTFail("changed migration must be refused")
        } catch {
            guard case .checksumMismatch = error else { return XCTFail("\(error)") }
        }
        let status = try await MigrationRunner(migrations: all, driver: SQLiteMigrationDriver(database: reopened)).status()
        XCTAssertTrue(status.allSatisfy { if case .applied = $0.state { return true }; return false }, "\(status)")
        await reopened.close()
    }

    func testTwoProcessesWorthOfHandlesMigrateOnce() async throws {
        // Two independent handles on one file (as two hub processes would have).
        let a = try await SQLiteDatabase.open(path: path)
        let b = try await SQLiteDatabase.open(path: path)
        let all = try Migration.sqlite
        async let ra = MigrationRunner(migrations: all, driver: SQLiteMigrationDriver(database: a)).migrate()
        async let rb = MigrationRunner(migrations: all, driver: SQLiteMigrationDriver(database: b)).migrate()
        let (x, y) = try await (ra, rb)
        XCTAssertEqual(x.count + y.count, all.count, "each migration applied exactly once: \(x.map(\.version)) \(y.map(\.version))")
        let awaited10 = try await a.query("SELECT count(*) FROM schema_migrations")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited10, all.count)
        await a.close()
        await b.close()
    }
}
