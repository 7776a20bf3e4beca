import Foundation
import HubIO
import HubMigrations
import HubPostgres
import HubRedis
import HubSQLite
import HubStore
import HubTestSupport
import Logging
import Testing
@testable import HubAuth

// The two store backends the identity tests run on, set up like HubStoreTests' conformance
// suite (which this target cannot import): fresh, isolated state per test — a SQLite file of
// its own, or a Redis namespace and PostgreSQL database of their own on the shared servers.

/// The implementations every service test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case embedded
    case redisPostgres

    var testDescription: String { rawValue }
}

enum AuthTestEnvironment {
    /// Two loops for the whole process.
    static let group: EventLoopGroup = {
        let group = try! EventLoopGroup(count: 2, registry: nil)
        group.start()
        return group
    }()

    /// Fresh `Stores` of `backend`.
    static func withStores<T>(_ backend: Backend, _ body: (Stores) async throws -> T) async throws -> T {
        switch backend {
        case .embedded:
            return try await withSQLite { database in try await body(Stores.embedded(database: database)) }
        case .redisPostgres:
            return try await withRedis { client, configuration, namespace in
                try await withPostgres { pool in
                    let networked = NetworkedStores(redis: client, redisConfiguration: configuration, pubSubLoop: group.loops[1],
                                                    postgres: pool, namespace: namespace)
                    defer { networked.close() }
                    return try await body(networked.stores)
                }
            }
        }
    }

    /// A connected client on the shared Redis (closed after `body`) and a fresh namespace.
    static func withRedis<T>(_ body: (RedisClient, RedisConfiguration, RedisNamespace) async throws -> T) async throws -> T {
        let server = try await offPool { try SharedTestServers.shared.redis() }
        let client = RedisClient(configuration: server.configuration, loop: group.loops[0])
        client.start()
        defer { client.close() }
        let deadline = ContinuousClock.now + .seconds(5)
        while !client.isConnected {
            guard ContinuousClock.now < deadline else { throw SetupError("Redis at \(server.url) not connected within 5 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return try await body(client, server.configuration, RedisNamespace("auth-\(UUID().uuidString.prefix(13))"))
    }

    static func withPostgres<T>(_ body: (PostgresPool) async throws -> T) async throws -> T {
        try await TestDatabases.withPostgres(prefix: "a", loops: group.loops, body)
    }

    static func withSQLite<T>(_ body: (SQLiteDatabase) async throws -> T) async throws -> T {
        try await TestDatabases.withSQLite(body)
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await TestDatabases.offPool(body)
    }
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A logger that drops everything (services log expected failures in some tests).
let quietLogger = Logger(label: "hubauth-tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A fixed key for tests (64 ASCII bytes).
let testHashKey = try! HashKey(text: String(repeating: "k", count: 64))
