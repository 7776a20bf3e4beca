import Foundation
import HubIO
import HubMigrations
import HubPostgres
import HubRedis
import HubSQLite
import HubStore
import HubTestSupport
import Testing

/// The two implementations every conformance test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// In process, durable records in SQLite (the default with no URLs).
    case embedded
    /// Redis for hot state, PostgreSQL for records: real servers started by the tests.
    case redisPostgres
    /// The hot-state stores on a real three-master Redis Cluster (`redis+cluster://`) that the
    /// tests start. Records do not depend on Redis, so the record suites skip this case
    /// (`recordBackends`); every hot-state suite runs on it.
    case redisCluster

    var testDescription: String { rawValue }

    /// The backends with distinct record stores (SQLite, PostgreSQL).
    static let recordBackends: [Backend] = [.embedded, .redisPostgres]
}

/// What the conformance tests run on: shared event loops and real servers, and fresh, isolated
/// backing state for each test (a Redis key namespace of its own, a PostgreSQL database of its
/// own, a SQLite file of its own), so that tests run in parallel without seeing each other.
enum TestEnvironment {
    /// Two loops for the whole process (the hub runs one per core).
    static let group: EventLoopGroup = {
        let group = try! EventLoopGroup(count: 2, registry: nil)
        group.start()
        return group
    }()

    static var loop: EventLoop { group.loops[0] }

    /// A key prefix no other test (or earlier run against an external server) uses.
    static func namespace() -> RedisNamespace { RedisNamespace("test-\(UUID().uuidString.prefix(13))") }

    /// A connected client on the shared Redis (closed after `body`), the server's configuration
    /// (for stores that open their own connections, such as a pub/sub subscriber) and a fresh
    /// namespace.
    static func withRedis<T>(_ body: (RedisClient, RedisConfiguration, RedisNamespace) async throws -> T) async throws -> T {
        let server = try await offPool { try SharedTestServers.shared.redis() }
        let client = RedisClient(configuration: server.configuration, loop: group.loops[0])
        client.start()
        defer { client.close() }
        let deadline = ContinuousClock.now + .seconds(5)
        while !client.isConnected {
            guard ContinuousClock.now < deadline else { throw TestSetupError("Redis at \(server.url) not connected within 5 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return try await body(client, server.configuration, namespace())
    }

    /// A connected cluster-mode client (one connection per master on each of the two loops) on
    /// the shared three-master cluster, its configuration and a fresh namespace.
    static func withRedisCluster<T>(_ body: (RedisClient, RedisConfiguration, RedisNamespace) async throws -> T) async throws -> T {
        let server = try await offPool { try SharedTestServers.shared.redisCluster() }
        let client = RedisClient(configuration: server.configuration, loops: group.loops)
        client.start()
        defer { client.close() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !client.isConnected {
            guard ContinuousClock.now < deadline else { throw TestSetupError("Redis Cluster at \(server.url) not connected within 10 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return try await body(client, server.configuration, namespace())
    }

    /// `withRedis` or `withRedisCluster`, by backend.
    static func withRedis<T>(_ backend: Backend, _ body: (RedisClient, RedisConfiguration, RedisNamespace) async throws -> T) async throws -> T {
        backend == .redisCluster ? try await withRedisCluster(body) : try await withRedis(body)
    }

    static func withPostgres<T>(_ body: (PostgresPool) async throws -> T) async throws -> T {
        try await TestDatabases.withPostgres(prefix: "t", loops: group.loops, body)
    }

    static func withSQLite<T>(_ body: (SQLiteDatabase) async throws -> T) async throws -> T {
        try await TestDatabases.withSQLite(body)
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await TestDatabases.offPool(body)
    }

    static func databaseURL(_ url: String, _ name: String) -> String { TestDatabases.databaseURL(url, name) }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
