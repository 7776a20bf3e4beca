import Foundation
import HubIO
import HubMigrations
import HubPostgres
import HubRedis
import HubSQLite
import HubTelemetry
import Logging
import Synchronization

/// Where the stores live, as the operator configured it.
public enum StoreBackendConfiguration: Sendable {
    /// Redis for hot state, PostgreSQL for records: what a cluster of nodes shares.
    case networked(redisURL: String, postgresURL: String)
    /// Records in SQLite under `directory`, hot state in this process.
    case embedded(directory: String)
}

/// The clients behind the store interfaces, built and owned in one place: Redis (one command
/// connection per loop, one subscriber connection per node) and the PostgreSQL pool, or the
/// embedded SQLite database. The server only starts it, reads `stores` and `health`, and
/// closes it.
///
/// Nothing here blocks start-up on a network dependency: clients connect (and reconnect) by
/// themselves and PostgreSQL migrations are retried in the background until they apply; each
/// dependency reports its state through `health`. The embedded database is opened and migrated
/// before `start` returns, so a hub never serves on a half-made schema.
public final class StoreBackend: Sendable {
    public let stores: Stores
    /// Each dependency's current state (`redis`, `postgres` or `embedded_store`), for `/readyz`.
    public let health: [(name: String, isReady: @Sendable () -> Bool)]
    private let closeAll: @Sendable () async -> Void

    private init(stores: Stores, health: [(name: String, isReady: @Sendable () -> Bool)], close: @escaping @Sendable () async -> Void) {
        self.stores = stores
        self.health = health
        closeAll = close
    }

    /// Builds the backend; throws `StoreBackendError` for a configuration it cannot use (a bad
    /// URL, an unopenable data directory).
    public static func start(_ configuration: StoreBackendConfiguration, loops: [EventLoop], registry: MetricsRegistry?,
                             logger: Logger) async throws(StoreBackendError) -> StoreBackend {
        switch configuration {
        case .networked(let redisURL, let postgresURL):
            let redisConfig: RedisConfiguration
            do { redisConfig = try RedisConfiguration(url: redisURL) } catch { throw StoreBackendError(setting: "redis-url", message: "\(error)") }
            // One command connection per loop (shared nothing): a handler on loop n talks to
            // Redis through loop n's connection, with no thread hop.
            let redis = RedisClient(configuration: redisConfig, loops: loops, registry: registry)
            redis.start()
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: postgresURL), loops: loops, metrics: registry)
            let migrated = DoneFlag()
            let migrations = migratePostgres(url: postgresURL, loop: loops[0], done: migrated, logger: logger)
            // Pub/sub gets its own connection, on the last loop.
            let networked = NetworkedStores(redis: redis, redisConfiguration: redisConfig, pubSubLoop: loops[loops.count - 1], postgres: pool)
            return StoreBackend(stores: networked.stores,
                                health: [("redis", { redis.isConnected }), ("postgres", { pool.isHealthy && migrated.isSet })]) {
                migrations.cancel()
                networked.close()
                redis.close()
                await pool.shutdown()
            }
        case .embedded(let directory):
            let path = (directory as NSString).appendingPathComponent("devicehub.sqlite")
            let database: SQLiteDatabase
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                database = try await SQLiteDatabase.open(path: path)
                let applied = try await MigrationRunner(migrations: try Migration.sqlite, driver: SQLiteMigrationDriver(database: database)).migrate()
                logger.info("embedded store ready", metadata: ["path": .string(path), "migrations_applied": .stringConvertible(applied.count)])
            } catch {
                throw StoreBackendError(setting: "data-dir", message: "cannot open \(path): \(error)")
            }
            return StoreBackend(stores: Stores.embedded(database: database), health: [("embedded_store", { true })]) {
                await database.close()
            }
        }
    }

    /// Closes every client (outstanding calls fail), bounded by the clients' own timeouts.
    public func close() async { await closeAll() }

    /// Applies pending migrations, retrying every few seconds while PostgreSQL is unreachable.
    private static func migratePostgres(url: String, loop: EventLoop, done: DoneFlag, logger: Logger) -> Task<Void, Never> {
        Task {
            var attempt = 0
            while !done.isSet, !Task.isCancelled {
                attempt += 1
                do {
                    let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loop)
                    defer { Task { await connection.close() } }
                    let applied = try await MigrationRunner(migrations: try Migration.postgres, driver: PostgresMigrationDriver(connection: connection)).migrate()
                    logger.info("postgres migrations applied", metadata: ["applied": .stringConvertible(applied.count)])
                    done.set()
                } catch {
                    if attempt == 1 || attempt % 10 == 0 {
                        logger.warning("postgres migrations pending; retrying", metadata: ["error": .string("\(error)"), "attempt": .stringConvertible(attempt)])
                    }
                    try? await Task.sleep(for: .seconds(2))
                }
            }
        }
    }
}

/// A flag set once, read from any thread (migrations applied).
final class DoneFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// A store setting the backend cannot use; `setting` names the option (`redis-url`, ...).
public struct StoreBackendError: Error, CustomStringConvertible {
    public var setting: String
    public var message: String
    public var description: String { "--\(setting): \(message)" }
}
