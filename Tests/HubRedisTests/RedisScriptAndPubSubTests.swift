import Foundation
import XCTest
import HubIO
@testable import HubRedis

/// Lua scripts (EVALSHA with the NOSCRIPT fallback) and pub/sub against a real Redis.
final class RedisScriptAndPubSubTests: RedisSharedServerTestCase {

    // MARK: scripts

    func testEvalShaFallsBackToEvalAfterScriptFlush() async throws {
        try await start()
        // A unique script body so that the test does not depend on what other runs loaded.
        let script = RedisScript("-- \(UUID().uuidString)\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
        let k = key("lua")
        let before = try await client.send(["SCRIPT", "EXISTS", RedisArgument(script.sha1)])
        XCTAssertEqual(before, .array([.integer(0)]))
        // First call: EVALSHA → NOSCRIPT → EVAL (which loads it).
        let first = try await client.eval(script, keys: [RedisArgument(k)], args: [5])
        XCTAssertEqual(first, .integer(5))
        let loaded = try await client.send(["SCRIPT", "EXISTS", RedisArgument(script.sha1)])
        XCTAssertEqual(loaded, .array([.integer(1)]), "the server knows the script under our locally computed SHA1")
        let second = try await client.eval(script, keys: [RedisArgument(k)], args: [7])
        XCTAssertEqual(second, .integer(12))

        // As after a Redis restart: the cache is gone, the client recovers by itself.
        _ = try await client.send(["SCRIPT", "FLUSH"])
        let flushed = try await client.send(["SCRIPT", "EXISTS", RedisArgument(script.sha1)])
        XCTAssertEqual(flushed, .array([.integer(0)]))
        let statsBefore = await client.statistics()
        let third = try await client.eval(script, keys: [RedisArgument(k)], args: [30])
        XCTAssertEqual(third, .integer(42))
        let statsAfter = await client.statistics()
        XCTAssertEqual(statsAfter.commands - statsBefore.commands, 2, "EVALSHA, then EVAL once")
        let fourth = try await client.eval(script, keys: [RedisArgument(k)], args: [0])
        XCTAssertEqual(fourth, .integer(42))
        let statsLast = await client.statistics()
        XCTAssertEqual(statsLast.commands - statsAfter.commands, 1, "EVALSHA only, once reloaded")
    }

    func testScriptErrorsAndTablesAreTyped() async throws {
        try await start()
        let failing = RedisScript("return redis.error_reply('DEVICE_BUSY device is busy')")
        do {
            _ = try await client.eval(failing)
            XCTFail("script error must throw")
        } catch {
            XCTAssertEqual(error.serverCode, "DEVICE_BUSY")
        }
        let table = RedisScript("return {1, 'two', false, {3}, redis.status_reply('OK'), redis.error_reply('NESTED bad')}")
        let value = try await client.eval(table)
        XCTAssertEqual(value, .array([.integer(1), .string(Array("two".utf8)), .null, .array([.integer(3)]), .status("OK"), .error("NESTED bad")]))
        let binary = RedisScript("return ARGV[1]")
        let echoed = try await client.eval(binary, args: [RedisArgument(bytes: [0, 1, 0, 255])])
        XCTAssertEqual(echoed, .string([0, 1, 0, 255]))
    }

    // MARK: pub/sub

    func testSubscribeAndUnsubscribeWhileRunning() async throws {
        try await start()
        let received = Locked<[RedisMessage]>([])
        let subscriber = RedisSubscriber(configuration: server.configuration, loop: testLoop.loop) { message in
            received.withLock { $0.append(message) }
        }
        subscriber.start()
        defer { subscriber.close() }
        let up = await waitUntil(timeout: 5) { subscriber.isConnected }
        XCTAssertTrue(up)

        let a = key("chan-a"), b = key("chan-b"), prefix = key("dev")
        try await subscriber.subscribe([a, b])
        let active = await subscriber.activeSubscriptions()
        XCTAssertEqual(active.channels, [a, b])

        let payload: [UInt8] = [0x00, 0x7b, 0x22, 0x00, 0xff]
        let toA = try await client.publish(RedisArgument(a), RedisArgument(bytes: payload))
        XCTAssertEqual(toA, 1)
        let toB = try await client.publish(RedisArgument(b), "to b")
        XCTAssertEqual(toB, 1)
        var delivered = await waitUntil(timeout: 5) { received.current.count == 2 }
        XCTAssertTrue(delivered)
        XCTAssertEqual(received.current, [RedisMessage(channel: a, pattern: nil, payload: payload),
                                          RedisMessage(channel: b, pattern: nil, payload: Array("to b".utf8))])

        // Leave one channel while running; the other keeps delivering.
        subscriber.unsubscribe([a])
        let left = await waitUntil(timeout: 5) { await subscriber.activeSubscriptions().channels == [b] }
        XCTAssertTrue(left)
        let afterLeave = try await client.publish(RedisArgument(a), "nobody")
        XCTAssertEqual(afterLeave, 0)

        // Patterns, added while running.
        try await subscriber.psubscribe([prefix + ":*"])
        let viaPattern = try await client.publish(RedisArgument(prefix + ":42"), "pattern hit")
        XCTAssertEqual(viaPattern, 1)
        let stillB = try await client.publish(RedisArgument(b), "b again")
        XCTAssertEqual(stillB, 1)
        delivered = await waitUntil(timeout: 5) { received.current.count == 4 }
        XCTAssertTrue(delivered)
        XCTAssertEqual(Array(received.current.suffix(2)), [
            RedisMessage(channel: prefix + ":42", pattern: prefix + ":*", payload: Array("pattern hit".utf8)),
            RedisMessage(channel: b, pattern: nil, payload: Array("b again".utf8)),
        ])

        // Resubscribing a channel we left works too.
        try await subscriber.subscribe([a])
        let back = try await client.publish(RedisArgument(a), "back")
        XCTAssertEqual(back, 1)
        subscriber.punsubscribe([prefix + ":*"])
        let patternGone = await waitUntil(timeout: 5) { await subscriber.activeSubscriptions().patterns.isEmpty }
        XCTAssertTrue(patternGone)
        let noPattern = try await client.publish(RedisArgument(prefix + ":43"), "x")
        XCTAssertEqual(noPattern, 0)
    }

    func testSubscribeWhileDisconnectedFailsFastButIsKept() async throws {
        try await start()
        let received = Locked<[RedisMessage]>([])
        let subscriber = RedisSubscriber(configuration: server.configuration, loop: testLoop.loop) { message in
            received.withLock { $0.append(message) }
        }
        let ch = key("early")
        do {
            try await subscriber.subscribe([ch])
            XCTFail("not started yet")
        } catch {
            XCTAssertEqual(error, .notConnected)
        }
        subscriber.start()
        defer { subscriber.close() }
        // The wanted channel is subscribed as soon as the connection is up.
        let active = await waitUntil(timeout: 5) { await subscriber.activeSubscriptions().channels == [ch] }
        XCTAssertTrue(active)
        let n = try await client.publish(RedisArgument(ch), "hi")
        XCTAssertEqual(n, 1)
        let got = await waitUntil(timeout: 5) { received.current.count == 1 }
        XCTAssertTrue(got)
    }
}
