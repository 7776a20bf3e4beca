import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One real redis-server and one PostgreSQL per test process, started on first use and stopped
/// when the process exits (`atexit`), for test suites that have no class-level tear-down (Swift
/// Testing). Start failures are remembered and rethrown to every caller: the tests fail, never
/// skip. `DEVICEHUB_TEST_REDIS_URL` / `DEVICEHUB_TEST_POSTGRES_URL` select external servers.
public final class SharedTestServers: @unchecked Sendable {
    public static let shared = SharedTestServers()

    private let lock = NSLock()
    private var redisResult: Result<RedisTestServer, Error>?
    private var postgresResult: Result<PostgresTestServer, Error>?
    private var redisClusterResult: Result<RedisClusterTestServer, Error>?

    private init() {
        atexit { SharedTestServers.shared.stopAll() }
    }

    public func redis() throws -> RedisTestServer {
        lock.lock()
        defer { lock.unlock() }
        if redisResult == nil { redisResult = Result { try RedisTestServer.startShared() } }
        return try redisResult!.get()
    }

    /// A three-master Redis Cluster of our own (there is no external one to select).
    public func redisCluster() throws -> RedisClusterTestServer {
        lock.lock()
        defer { lock.unlock() }
        if redisClusterResult == nil { redisClusterResult = Result { try RedisClusterTestServer.start() } }
        return try redisClusterResult!.get()
    }

    public func postgres() throws -> PostgresTestServer {
        lock.lock()
        defer { lock.unlock() }
        if postgresResult == nil { postgresResult = Result { try PostgresTestServer.start() } }
        return try postgresResult!.get()
    }

    func stopAll() {
        lock.lock()
        defer { lock.unlock() }
        if case .success(let server) = redisResult { server.stop() }
        if case .success(let server) = postgresResult { server.stop() }
        if case .success(let server) = redisClusterResult { server.stop() }
        redisClusterResult = nil
        redisResult = nil
        postgresResult = nil
    }
}
