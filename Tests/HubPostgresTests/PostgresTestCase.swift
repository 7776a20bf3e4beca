import Foundation
import HubIO
import HubPostgres
import HubTelemetry
import HubTestSupport
import XCTest

/// Base of the PostgreSQL test classes: each class gets its own server (started in the class's
/// `setUp`, stopped in its `tearDown`) and two running event loops.
class PostgresTestCase: XCTestCase {
    nonisolated(unsafe) static var server: PostgresTestServer?
    nonisolated(unsafe) static var startError: Error?
    nonisolated(unsafe) static var group: EventLoopGroup?

    override class func setUp() {
        super.setUp()
        server = nil
        startError = nil
        do {
            server = try PostgresTestServer.start()
        } catch {
            startError = error
        }
        let g = try! EventLoopGroup(count: 2, registry: nil)
        g.start()
        group = g
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        group?.stopAndJoin()
        group = nil
        super.tearDown()
    }

    /// The class's server; fails the test (never skips) when it could not be started.
    func requireServer(file: StaticString = #filePath, line: UInt = #line) throws -> PostgresTestServer {
        if let error = Self.startError {
            XCTFail("PostgreSQL test server unavailable: \(error)", file: file, line: line)
            throw error
        }
        return try XCTUnwrap(Self.server, "PostgreSQL test server was not started", file: file, line: line)
    }

    var loops: [EventLoop] { Self.group!.loops }

    /// A pool on both loops with test-friendly limits.
    func makePool(_ configure: (inout PostgresPoolConfiguration) -> Void = { _ in }, metrics: MetricsRegistry? = nil) throws -> PostgresPool {
        let server = try requireServer()
        var config = PostgresPoolConfiguration(url: server.url)
        config.maxConnections = 4
        config.acquireTimeout = .seconds(5)
        configure(&config)
        return PostgresPool(configuration: config, loops: loops, metrics: metrics)
    }

    /// Waits (polling) until `condition` holds or `timeout` passes; returns whether it held.
    func eventually(timeout: Double, _ condition: () async -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return await condition()
    }
}

/// Asserts that `body` throws a `PostgresError` matching `matches`, and returns it.
@discardableResult
func assertPostgresError<T>(_ body: () async throws -> T, _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                            _ matches: (PostgresError) -> Bool) async -> PostgresError? {
    do {
        _ = try await body()
        XCTFail("expected a PostgresError, got success. \(message)", file: file, line: line)
        return nil
    } catch let error as PostgresError {
        XCTAssertTrue(matches(error), "unexpected error \(error). \(message)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a PostgresError, got \(error). \(message)", file: file, line: line)
        return nil
    }
}
