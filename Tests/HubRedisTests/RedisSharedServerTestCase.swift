import Foundation
import HubTestSupport
import XCTest
import HubIO
@testable import HubRedis

/// Base for tests that share one real Redis per class: starts it once, gives each test a fresh
/// loop and connected client through `start()`.
class RedisSharedServerTestCase: XCTestCase {
    nonisolated(unsafe) static var server: RedisTestServer?
    nonisolated(unsafe) static var setupError: Error?

    override class func setUp() {
        super.setUp()
        do { server = try RedisTestServer.startShared() } catch { setupError = error }
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    var testLoop: TestLoop!
    var client: RedisClient!
    var server: RedisTestServer!

    /// Every test starts here. Not `setUp`: an error thrown there is also logged by XCTest as a
    /// skip, and a missing Redis must read as the failure it is.
    func start() async throws {
        if let error = Self.setupError { throw error }
        server = try XCTUnwrap(Self.server)
        testLoop = try TestLoop()
        client = try await RedisClient.connected(to: server, loop: testLoop.loop)
    }

    override func tearDown() async throws {
        client?.close()
        testLoop?.stop()
    }

    /// A key no other test (or earlier run against an external server) uses.
    func key(_ name: String) -> String { "hubredis-test:\(name):\(UUID().uuidString)" }
}
