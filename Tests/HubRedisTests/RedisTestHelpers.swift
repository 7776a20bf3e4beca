import Foundation
import XCTest
import HubIO
import HubTestSupport
@testable import HubRedis

/// One event loop on its own thread, for a test case.
final class TestLoop {
    let group: EventLoopGroup
    var loop: EventLoop { group.loops[0] }

    init() throws {
        group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
    }

    func stop() { group.stopAndJoin() }
}

/// A thread-safe box for results gathered on the loop and checked by the test.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock(); defer { lock.unlock() }
        return body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
func waitUntil(timeout: TimeInterval, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return await condition()
}

extension RedisClient {
    /// A started client on `loop` for `server`, waited until connected.
    static func connected(to server: RedisTestServer, loop: EventLoop, configure: (inout RedisConfiguration) -> Void = { _ in },
                          file: StaticString = #filePath, line: UInt = #line) async throws -> RedisClient {
        var configuration = server.configuration
        configure(&configuration)
        let client = RedisClient(configuration: configuration, loop: loop)
        client.start()
        guard await client.waitUntilConnected(timeout: .seconds(5)) else {
            client.close()
            throw RedisTestSetupError(description: "client did not connect to \(server.url) within 5 s")
        }
        return client
    }
}
