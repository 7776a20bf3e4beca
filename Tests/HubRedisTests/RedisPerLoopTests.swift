import Foundation
import HubIO
import XCTest
@testable import HubRedis

/// Shared nothing: a client built over several loops keeps one connection per loop, and a
/// command sent from loop n travels on loop n's connection, its reply handled on loop n.
final class RedisPerLoopTests: RedisSharedServerTestCase {
    func testEachLoopUsesItsOwnConnectionAndGetsItsReplyOnItself() async throws {
        try await start()
        let group = try EventLoopGroup(count: 2, registry: nil)
        group.start()
        defer { group.stopAndJoin() }
        let multi = RedisClient(configuration: server.configuration, loops: group.loops)
        multi.start()
        defer { multi.close() }
        let connected = await multi.waitUntilConnected(timeout: .seconds(5))
        XCTAssertTrue(connected)
        for loop in group.loops {
            let answer: (sameLoop: Bool, clientID: Int64) = try await Task(executorPreference: loop) {
                let reply = try await multi.send(["CLIENT", "ID"])
                guard case .integer(let id) = reply else { throw TestFailure("CLIENT ID: \(reply)") }
                return (EventLoop.current === loop, id)
            }.value
            XCTAssertTrue(answer.sameLoop, "loop \(loop.index): the reply resumed the task on its own loop")
            let again: Int64 = try await Task(executorPreference: loop) {
                guard case .integer(let id) = try await multi.send(["CLIENT", "ID"]) else { return -1 }
                return id
            }.value
            XCTAssertEqual(again, answer.clientID, "loop \(loop.index) always talks through the same connection")
        }
        let ids: [Int64] = try await group.loops.asyncMap { loop in
            try await Task(executorPreference: loop) {
                guard case .integer(let id) = try await multi.send(["CLIENT", "ID"]) else { return -1 }
                return id
            }.value
        }
        XCTAssertEqual(Set(ids).count, 2, "the two loops use different connections")
        // Off the loops, commands go through the first loop's connection.
        guard case .integer(let fromOutside) = try await multi.send(["CLIENT", "ID"]) else { return XCTFail("CLIENT ID") }
        XCTAssertEqual(fromOutside, ids[0])
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension Array {
    func asyncMap<T>(_ body: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await body(e)) }
        return out
    }
}
