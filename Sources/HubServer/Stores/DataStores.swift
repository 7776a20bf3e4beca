import Foundation
import HubIO
import HubMigrations
import HubPostgres
import HubRedis
import HubSQLite
import HubStore
import HubTelemetry
import Logging

/// The hub's data layer as configured: Redis + PostgreSQL when both URLs are given, otherwise
/// the embedded store (durable records in SQLite under `--data-dir`, hot state in process).
/// `stores` is what the domain uses; the clients stay here for readiness and shutdown.
///
/// Nothing here blocks start-up on a dependency: clients connect (and reconnect) by
/// themselves, PostgreSQL migrations are retried in the background until they apply, and
/// `/readyz` reports each dependency's state through a `ReadinessCheck`.
final class DataStores: HubService, @unchecked Sendable {
    // @unchecked: the clients and `stores` are written once by `start()`, which the service
    // group runs before any request can read them, and only read afterwards.
    let name = "stores"
    private(set) var redis: RedisClient?
    private(set) var postgres: PostgresPool?
    private(set) var sqlite: SQLiteDatabase?
    /// The store interfaces over whichever backend was configured; set by `start`.
    private(set) var stores: Stores?
    private var networked: NetworkedStores?
    private let logger: Logger
    private let migrated = MigrationState()

    private let config: ServerConfig
    private let loops: [EventLoop]
    private let registry: MetricsRegistry
    private let readiness: Readiness

    init(config: ServerConfig, loops: [EventLoop], registry: MetricsRegistry, readiness: Readiness, logger: Logger) {
        self.config = config
        self.loops = loops
        self.registry = registry
        self.readiness = readiness
        self.logger = logger
    }

    func start() async throws {
        let config = self.config, loops = self.loops
        if let url = config.redisURL, let pgURL = config.postgresURL {
            let redisConfig: RedisConfiguration
            do { redisConfig = try RedisConfiguration(url: url) } catch { throw ConfigError(message: "--redis-url: \(error)") }
            // One command connection per loop (shared nothing): a handler on loop n talks to
            // Redis through loop n's connection, with no thread hop.
            let client = RedisClient(configuration: redisConfig, loops: loops, registry: registry)
            client.start()
            redis = client
            readiness.add(Check(name: "redis") { client.isConnected })

            let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: pgURL), loops: loops, metrics: registry)
            postgres = pool
            let state = migrated
            readiness.add(Check(name: "postgres") { pool.isHealthy && state.done })
            migratePostgres(url: pgURL, loop: loops[0])
            // Pub/sub gets its own connection, on the last loop (away from loop 0's commands).
            let networked = NetworkedStores(redis: client, redisConfiguration: redisConfig, pubSubLoop: loops[loops.count - 1], postgres: pool)
            self.networked = networked
            stores = networked.stores
        } else {
            let dir = config.dataDirectory
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = (dir as NSString).appendingPathComponent("devicehub.sqlite")
            let state = migrated
            // Opening and migrating SQLite is local and quick; the hub waits for it so that it
            // never serves on a half-made schema.
            let database: SQLiteDatabase
            do {
                database = try await SQLiteDatabase.open(path: path)
                let applied = try await MigrationRunner(migrations: try Migration.sqlite, driver: SQLiteMigrationDriver(database: database)).migrate()
                logger.info("embedded store ready", metadata: ["path": .string(path), "migrations_applied": .stringConvertible(applied.count)])
                state.done = true
            } catch {
                throw ConfigError(message: "--data-dir: cannot open \(path): \(error)")
            }
            sqlite = database
            stores = Stores.embedded(database: database)
            readiness.add(Check(name: "embedded_store") { state.done })
        }
    }

    /// Applies pending migrations, retrying every few seconds while PostgreSQL is unreachable.
    private func migratePostgres(url: String, loop: EventLoop) {
        let state = migrated
        let log = logger
        Task {
            var attempt = 0
            while !state.done {
                attempt += 1
                do {
                    let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: loop)
                    defer { Task { await connection.close() } }
                    let applied = try await MigrationRunner(migrations: try Migration.postgres, driver: PostgresMigrationDriver(connection: connection)).migrate()
                    log.info("postgres migrations applied", metadata: ["applied": .stringConvertible(applied.count)])
                    state.done = true
                } catch {
                    if attempt == 1 || attempt % 10 == 0 {
                        log.warning("postgres migrations pending; retrying", metadata: ["error": .string("\(error)"), "attempt": .stringConvertible(attempt)])
                    }
                    try? await Task.sleep(for: .seconds(2))
                }
            }
        }
    }

    func stop() async {
        networked?.close()
        redis?.close()
        await postgres?.shutdown()
        await sqlite?.close()
    }
}

/// Set once migrations have been applied (read by readiness checks from any thread).
final class MigrationState: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var done: Bool {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

/// A readiness check from a closure.
final class Check: ReadinessCheck, @unchecked Sendable {
    let name: String
    private let probe: () -> Bool
    init(name: String, _ probe: @escaping () -> Bool) {
        self.name = name
        self.probe = probe
    }
    func isReady() -> Bool { probe() }
}
