import Foundation
import XCTest
import HubIO
import HubTelemetry
import HubTestSupport
@testable import HubRedis

/// Round trips against a real Redis, cross-checked with `redis-cli`.
final class RedisClientTests: RedisSharedServerTestCase {

    func testValuesWithNulBytesRoundTrip() async throws {
        try await start()
        let k = key("nul")
        let value: [UInt8] = [0x00, 0x41, 0x00, 0x00, 0xff, 0x0d, 0x0a, 0x00]
        try await client.set(RedisArgument(k), RedisArgument(bytes: value))
        let got = try await client.get(RedisArgument(k))
        XCTAssertEqual(got, value)
        let empty = key("empty")
        try await client.set(RedisArgument(empty), RedisArgument(bytes: []))
        let gotEmpty = try await client.get(RedisArgument(empty))
        XCTAssertEqual(gotEmpty, [])
        let missing = try await client.get(RedisArgument(key("missing")))
        XCTAssertNil(missing)
    }

    func testOneMiBValueRoundTrips() async throws {
        try await start()
        let k = key("big")
        var rng = SystemRandomNumberGenerator()
        let value = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try await client.set(RedisArgument(k), RedisArgument(bytes: value))
        let got = try await client.get(RedisArgument(k))
        XCTAssertEqual(got?.count, value.count)
        XCTAssertTrue(got == value, "1 MiB value differs after the round trip")
        let strlen = try await client.send(["STRLEN", RedisArgument(k)])
        XCTAssertEqual(strlen, .integer(1 << 20))
    }

    func testBinaryAndUTF8Keys() async throws {
        try await start()
        let binaryKey: [UInt8] = Array(key("bin").utf8) + [0x00, 0xff, 0xfe, 0x0a, 0x00]
        try await client.set(RedisArgument(bytes: binaryKey), "binary-key-value")
        let viaBinary = try await client.get(RedisArgument(bytes: binaryKey))
        XCTAssertEqual(viaBinary, Array("binary-key-value".utf8))
        // The same prefix without the binary tail is a different key.
        let viaPrefix = try await client.get(RedisArgument(bytes: Array(binaryKey.prefix(binaryKey.count - 5))))
        XCTAssertNil(viaPrefix)

        let utf8Key = key("ключ-🔑-設備")
        try await client.set(RedisArgument(utf8Key), "значение ✓")
        let text = try await client.getString(RedisArgument(utf8Key))
        XCTAssertEqual(text, "значение ✓")
        // redis-cli sees the same key (as UTF-8 bytes) and the same value.
        let cli = try server.cli(["GET", utf8Key])
        XCTAssertEqual(cli, Array("значение ✓\n".utf8))
    }

    func testCrossCheckWithRedisCLI() async throws {
        try await start()
        // Written by us, read by redis-cli: raw (piped) output is the bytes plus a newline;
        // --no-raw output is redis-cli's quoted escape form.
        let ours = key("ours")
        let value: [UInt8] = Array("dev".utf8) + [0x00, 0x01, 0xff] + Array("ice\"\\".utf8)
        try await client.set(RedisArgument(ours), RedisArgument(bytes: value))
        XCTAssertEqual(try server.cli(["GET", ours]), value + [0x0a])
        XCTAssertEqual(String(decoding: try server.cli(["--no-raw", "GET", ours]), as: UTF8.self), "\"dev\\x00\\x01\\xffice\\\"\\\\\"\n")

        // Written by redis-cli (`-x` takes the last argument from stdin, byte for byte), read by us.
        let theirs = key("theirs")
        let theirValue: [UInt8] = [0x00, 0x00, 0x7f, 0x80, 0xc3, 0x28, 0x0a, 0x00] + Array("end".utf8)
        XCTAssertEqual(String(decoding: try server.cli(["-x", "SET", theirs], input: theirValue), as: UTF8.self), "OK\n")
        let got = try await client.get(RedisArgument(theirs))
        XCTAssertEqual(got, theirValue)

        // Counters: INCR through us, GET through redis-cli and the other way round.
        let counter = key("counter")
        for _ in 0..<3 { _ = try await client.incr(RedisArgument(counter)) }
        XCTAssertEqual(try server.cli(["GET", counter]), Array("3\n".utf8))
        _ = try server.cli(["INCRBY", counter, "39"])
        let final = try await client.get(RedisArgument(counter))
        XCTAssertEqual(final.map { String(decoding: $0, as: UTF8.self) }, "42")
    }

    func testPipeliningTenThousandCommandsFromTheLoop() async throws {
        try await start()
        let k = key("pipeline")
        let before = await client.statistics()
        let count = 10_000
        let results = Locked<[Int64]>([])
        let started = monotonicNanoseconds()
        let done: Void = await withCheckedContinuation { continuation in
            // All sends happen in one loop task: hiredis buffers them and the loop flushes once
            // the socket is writable.
            testLoop.loop.execute { [client] in
                for i in 0..<count {
                    client!.send(["INCR", RedisArgument(k)]) { result in
                        let n = results.withLock { r -> Int in
                            if case .success(.integer(let v)) = result { r.append(v) } else { r.append(-1) }
                            return r.count
                        }
                        if n == count { continuation.resume() }
                        _ = i
                    }
                }
            }
        }
        _ = done
        let elapsed = Double(monotonicNanoseconds() - started) / 1e9
        XCTAssertEqual(results.current, (1...Int64(count)).map { $0 }, "every reply, in order")
        let after = await client.statistics()
        let writes = after.writeEvents - before.writeEvents
        let commands = after.commands - before.commands
        print("pipelining: \(commands) commands in \(writes) write events, \(after.readEvents - before.readEvents) read events, \(String(format: "%.1f", elapsed * 1000)) ms")
        XCTAssertEqual(commands, count)
        XCTAssertLessThan(writes, 100, "10,000 sends in one iteration must leave in a handful of writes, not one each")

        // Off the loop too: concurrent tasks each hop onto the loop; still all answered.
        let k2 = key("pipeline-async")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<1000 {
                group.addTask { [client] in _ = try await client!.send(["INCR", RedisArgument(k2)]) }
            }
            try await group.waitForAll()
        }
        let total = try await client.get(RedisArgument(k2))
        XCTAssertEqual(total.map { String(decoding: $0, as: UTF8.self) }, "1000")
    }

    func testTypedErrors() async throws {
        try await start()
        let list = key("list")
        _ = try await client.send(["LPUSH", RedisArgument(list), "a"])
        do {
            _ = try await client.get(RedisArgument(list))
            XCTFail("GET of a list must fail")
        } catch {
            XCTAssertEqual(error.serverCode, "WRONGTYPE")
            guard case .server(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.hasPrefix("WRONGTYPE Operation against a key holding the wrong kind of value"), message)
        }
        let text = key("text")
        try await client.set(RedisArgument(text), "not a number")
        do {
            _ = try await client.incr(RedisArgument(text))
            XCTFail("INCR of text must fail")
        } catch {
            XCTAssertEqual(error, .server("ERR value is not an integer or out of range"))
        }
        do {
            _ = try await client.send(["NOSUCHCOMMAND", "x"])
            XCTFail("unknown command must fail")
        } catch {
            XCTAssertEqual(error.serverCode, "ERR")
        }
        // Commands that would break reply ordering are refused locally.
        do {
            _ = try await client.send(["subscribe", "ch"])
            XCTFail("SUBSCRIBE must be refused on a RedisClient")
        } catch {
            guard case .invalidCommand = error else { return XCTFail("\(error)") }
        }
        do {
            _ = try await client.send([])
            XCTFail("an empty command must be refused")
        } catch {
            guard case .invalidCommand = error else { return XCTFail("\(error)") }
        }
        // The connection is still in step after all of that.
        try await client.ping()
    }

    func testTypedHelpers() async throws {
        try await start()
        let k = key("helpers")
        try await client.set(RedisArgument(k), "v", ex: .seconds(100))
        let ttl = try await client.send(["TTL", RedisArgument(k)])
        XCTAssertTrue((98...100).contains(ttl.integer ?? -1), "\(ttl)")
        try await client.set(RedisArgument(k), "v", ex: .milliseconds(1500))
        let pttl = try await client.send(["PTTL", RedisArgument(k)])
        XCTAssertTrue((1000...1500).contains(pttl.integer ?? -1), "\(pttl)")
        let setAgain = try await client.setIfAbsent(RedisArgument(k), "w")
        XCTAssertFalse(setAgain)
        let n = key("n")
        let one = try await client.incr(RedisArgument(n))
        let eleven = try await client.incr(RedisArgument(n), by: 10)
        XCTAssertEqual([one, eleven], [1, 11])
        let expired = try await client.expire(RedisArgument(n), .seconds(30))
        XCTAssertTrue(expired)
        let missing = try await client.expire(RedisArgument(key("nope")), .seconds(30))
        XCTAssertFalse(missing)
        let receivers = try await client.publish(RedisArgument(key("nobody-listens")), "hello")
        XCTAssertEqual(receivers, 0)
        let deleted = try await client.del([RedisArgument(k), RedisArgument(n), RedisArgument(key("never"))])
        XCTAssertEqual(deleted, 2)
    }

    func testAuthAndSelectFromURL() async throws {
        try await start()
        // An ACL user of our own, so the default user (and other tests) are untouched.
        let user = "hubtest-\(UInt32.random(in: 0...UInt32.max))"
        _ = try await client.send(["ACL", "SETUSER", RedisArgument(user), "on", ">p@ss:w/rd", "~*", "&*", "+@all"])
        defer { Task { [client] in _ = try? await client!.send(["ACL", "DELUSER", RedisArgument(user)]) } }
        let url = "redis://\(user):p%40ss%3Aw%2Frd@\(server.host):\(server.port)/3"
        let configuration = try RedisConfiguration(url: url)
        let authed = RedisClient(configuration: configuration, loop: testLoop.loop)
        authed.start()
        defer { authed.close() }
        let connected = await authed.waitUntilConnected(timeout: .seconds(5))
        XCTAssertTrue(connected)
        let whoami = try await authed.send(["ACL", "WHOAMI"])
        XCTAssertEqual(whoami.text, user)
        let k = key("db3")
        try await authed.set(RedisArgument(k), "in db 3")
        // Our default client is on db 0: the key is not there, but is in db 3.
        let inZero = try await client.get(RedisArgument(k))
        XCTAssertNil(inZero)
        XCTAssertEqual(try server.cli(["-n", "3", "GET", k]), Array("in db 3\n".utf8))

        // A wrong password never becomes ready, and says so through metrics.
        let registry = MetricsRegistry(loops: 1)
        var bad = configuration
        bad.password = "wrong"
        bad.name = "badauth"
        let rejected = RedisClient(configuration: bad, loop: testLoop.loop, registry: registry)
        let failuresSeries = "devicehub_redis_connect_failures_total{client=\"badauth\"}"
        let failuresBefore = try XCTUnwrap(MetricsText.value(registry.render(), failuresSeries), "registered with the client")
        rejected.start()
        defer { rejected.close() }
        let rejectedConnected = await rejected.waitUntilConnected(timeout: .milliseconds(500))
        XCTAssertFalse(rejectedConnected)
        do {
            _ = try await rejected.send(["PING"])
            XCTFail("must not be connected")
        } catch {
            XCTAssertEqual(error, .notConnected)
        }
        let failuresAfter = MetricsText.value(registry.render(), failuresSeries) ?? -1
        XCTAssertGreaterThan(failuresAfter, failuresBefore, "rejected AUTH attempts must be counted")
    }

    func testNotConnectedBeforeStartAndClosedAfterClose() async throws {
        try await start()
        let idle = RedisClient(configuration: server.configuration, loop: testLoop.loop)
        let started = ContinuousClock.now
        do {
            _ = try await idle.send(["PING"])
            XCTFail("not started")
        } catch {
            XCTAssertEqual(error, .notConnected)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(100), "fails fast")
        idle.close()
        do {
            _ = try await idle.send(["PING"])
            XCTFail("closed")
        } catch {
            XCTAssertEqual(error, .closed)
        }
    }

    /// A client let go of without `close()` (from a non-loop thread) closes its connection on
    /// its loop: no crash, no leaked server connection.
    func testDroppingAClientClosesItsConnection() async throws {
        try await start()
        let name = "hubredis-drop-\(UInt32.random(in: 0...UInt32.max))"
        func connectionsNamed() async throws -> Int {
            let list = try await client.send(["CLIENT", "LIST"])
            return (list.text ?? "").split(separator: "\n").filter { $0.contains("name=\(name) ") }.count
        }
        var dropped: RedisClient? = try await RedisClient.connected(to: server, loop: testLoop.loop)
        _ = try await dropped!.send(["CLIENT", "SETNAME", RedisArgument(name)])
        let before = try await connectionsNamed()
        XCTAssertEqual(before, 1)
        dropped = nil
        let gone = await waitUntil(timeout: 5) { (try? await connectionsNamed()) == 0 }
        XCTAssertTrue(gone, "the dropped client's connection must be closed")
        _ = dropped
    }

    func testMetricsAreRecorded() async throws {
        try await start()
        let registry = MetricsRegistry(loops: 1)
        var configuration = server.configuration
        configuration.name = "metrics-test"
        let measured = RedisClient(configuration: configuration, loop: testLoop.loop, registry: registry)
        measured.start()
        defer { measured.close() }
        let connected = await measured.waitUntilConnected(timeout: .seconds(5))
        XCTAssertTrue(connected)
        for _ in 0..<5 { try await measured.ping() }
        _ = try? await measured.send(["NOSUCHCOMMAND"])
        let text = registry.render()
        // 7: the handshake's PING, five PINGs, one unknown command.
        XCTAssertTrue(text.contains("devicehub_redis_commands_total{client=\"metrics-test\"} 7"), text)
        XCTAssertTrue(text.contains("devicehub_redis_errors_total{client=\"metrics-test\"} 1"), text)
        XCTAssertTrue(text.contains("devicehub_redis_command_seconds_count{client=\"metrics-test\"} 7"), text)
        XCTAssertTrue(text.contains("devicehub_redis_timeouts_total{client=\"metrics-test\"} 0"), text)
    }
}
