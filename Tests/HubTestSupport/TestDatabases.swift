import Foundation
import HubIO
import HubMigrations
import HubPostgres
import HubSQLite

/// Fresh, migrated databases for one test each, shared by every test target that runs the
/// store code against real backends (HubStoreTests, HubAuthTests).
public enum TestDatabases {
    /// A pool on a new, migrated PostgreSQL database of the shared server, dropped after `body`.
    /// `prefix` makes the database names of different suites tell apart in `psql \l`.
    public static func withPostgres<T>(prefix: String, loops: [EventLoop], _ body: (PostgresPool) async throws -> T) async throws -> T {
        let server = try await offPool { try SharedTestServers.shared.postgres() }
        let name = prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let admin = try await PostgresConnection.connect(to: PostgresConfiguration(url: server.url), on: loops[0])
        _ = try await admin.query("CREATE DATABASE \(name)")
        let url = databaseURL(server.url, name)
        do {
            let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loops[0])
            _ = try await MigrationRunner(migrations: try Migration.postgres, driver: PostgresMigrationDriver(connection: connection)).migrate()
            await connection.close()
        }
        var configuration = PostgresPoolConfiguration(url: url)
        configuration.maxConnections = 4
        let pool = PostgresPool(configuration: configuration, loops: loops)
        let result: Result<T, Error>
        do { result = .success(try await body(pool)) } catch { result = .failure(error) }
        await pool.shutdown()
        _ = try? await admin.query("DROP DATABASE \(name) WITH (FORCE)")
        await admin.close()
        return try result.get()
    }

    /// A new, migrated SQLite database in a temporary directory, removed after `body`.
    public static func withSQLite<T>(_ body: (SQLiteDatabase) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hubtest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try await SQLiteDatabase.open(path: directory.appendingPathComponent("devicehub.sqlite").path)
        _ = try await MigrationRunner(migrations: try Migration.sqlite, driver: SQLiteMigrationDriver(database: database)).migrate()
        let result: Result<T, Error>
        do { result = .success(try await body(database)) } catch { result = .failure(error) }
        await database.close()
        return try result.get()
    }

    /// Runs blocking work (starting a server, which waits for it to answer) on a thread of its
    /// own: on the cooperative pool it would stall every other test's tasks meanwhile (2 threads
    /// on this machine), and timing assertions elsewhere would see the stall.
    public static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// `url` with its database name replaced by `name`.
    public static func databaseURL(_ url: String, _ name: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + name
        return components.string ?? url
    }
}
