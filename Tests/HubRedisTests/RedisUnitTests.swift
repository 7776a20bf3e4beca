import Foundation
import XCTest
@testable import HubRedis

/// The pure parts, no server: URL parsing, backoff, the pending-command queue, SHA1.
final class RedisUnitTests: XCTestCase {
    // MARK: URLs

    func testURLForms() throws {
        var c = try RedisConfiguration(url: "redis://127.0.0.1:6380/2")
        XCTAssertEqual(c.host, "127.0.0.1"); XCTAssertEqual(c.port, 6380); XCTAssertEqual(c.database, 2)
        XCTAssertNil(c.username); XCTAssertNil(c.password)

        c = try RedisConfiguration(url: "redis://cache.internal")
        XCTAssertEqual(c.host, "cache.internal"); XCTAssertEqual(c.port, 6379); XCTAssertEqual(c.database, 0)

        c = try RedisConfiguration(url: "redis://hub:s3cr%40t@10.0.0.5:7000/15")
        XCTAssertEqual(c.username, "hub"); XCTAssertEqual(c.password, "s3cr@t"); XCTAssertEqual(c.database, 15)

        c = try RedisConfiguration(url: "redis://:onlypass@localhost:6379/")
        XCTAssertNil(c.username); XCTAssertEqual(c.password, "onlypass"); XCTAssertEqual(c.database, 0)

        c = try RedisConfiguration(url: "redis://bare-password@localhost")
        XCTAssertNil(c.username); XCTAssertEqual(c.password, "bare-password")

        c = try RedisConfiguration(url: "redis://u:p@ss@[::1]:6390/1")
        XCTAssertEqual(c.host, "::1"); XCTAssertEqual(c.port, 6390); XCTAssertEqual(c.password, "p@ss"); XCTAssertEqual(c.username, "u")
    }

    func testURLErrorsNameTheProblem() {
        func error(_ url: String) -> RedisURLError? {
            do { _ = try RedisConfiguration(url: url); return nil } catch { return error }
        }
        XCTAssertEqual(error("http://h:1"), .unsupportedScheme("http"))
        XCTAssertEqual(error("rediss://h:1"), .unsupportedScheme("rediss"))
        XCTAssertTrue(error("rediss://h:1")!.description.contains("TLS"))
        XCTAssertEqual(error("localhost:6379"), .unsupportedScheme("localhost:6379"))
        XCTAssertEqual(error("redis://:6379"), .missingHost)
        XCTAssertEqual(error("redis://user:pw@/0"), .missingHost)
        XCTAssertEqual(error("redis://h:0"), .invalidPort("0"))
        XCTAssertEqual(error("redis://h:70000"), .invalidPort("70000"))
        XCTAssertEqual(error("redis://h:port"), .invalidPort("port"))
        XCTAssertEqual(error("redis://h:6379/x"), .invalidDatabase("x"))
        XCTAssertEqual(error("redis://h:6379/-1"), .invalidDatabase("-1"))
        XCTAssertEqual(error("redis://u:%zz@h"), .malformed("bad percent-encoding in password"))
        XCTAssertEqual(error("redis://[::1:6379"), .malformed("unterminated IPv6 address '[::1:6379'"))
        XCTAssertNotNil(error("redis://h:6379/0?timeout=1"))
    }

    // MARK: backoff

    func testBackoffDoublesToTheCapWithJitterInTheUpperHalf() {
        var backoff = ReconnectBackoff(base: .milliseconds(50), cap: .seconds(2))
        var rng = SystemRandomNumberGenerator()
        let steps: [UInt64] = [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000].map { $0 * 1_000_000 }
        for step in steps {
            XCTAssertEqual(backoff.currentStep, step)
            let d = backoff.nextDelay(using: &rng)
            XCTAssertGreaterThanOrEqual(d, step / 2)
            XCTAssertLessThanOrEqual(d, step)
        }
        backoff.reset()
        XCTAssertEqual(backoff.currentStep, 50_000_000)
        for _ in 0..<1000 { _ = backoff.nextDelay(using: &rng) }
        XCTAssertEqual(backoff.currentStep, 2_000_000_000, "no overflow after many attempts")
    }

    // MARK: pending queue

    func testPendingQueueTimesOutOnlyExpiredEntriesAndKeepsOrder() {
        var queue = PendingCommands()
        let outcomes = Locked<[Int: String]>([:])
        for i in 1...5 {
            let deadline: UInt64 = i % 2 == 0 ? 100 : (i == 5 ? .max : 1000)
            queue.append(PendingCommand(seq: UInt64(i), deadline: deadline, start: 0) { result in
                outcomes.withLock { $0[i] = "\(result)" }
            })
        }
        XCTAssertTrue(queue.expire(now: 50).isEmpty, "nothing due yet")
        let expired = queue.expire(now: 150)
        XCTAssertEqual(expired.count, 2)
        expired.forEach { $0(.failure(.timeout)) }
        XCTAssertEqual(queue.earliestDeadline, 1000)
        XCTAssertEqual(queue.count, 5, "timed-out entries stay until their reply arrives")
        // Replies still pop in FIFO order, the timed-out ones without a completion.
        let first = queue.popFirst()!
        XCTAssertEqual(first.seq, 1); XCTAssertNotNil(first.completion)
        let second = queue.popFirst()!
        XCTAssertEqual(second.seq, 2); XCTAssertNil(second.completion)
        XCTAssertEqual(queue.oldestTimedOutAt, nil)
        _ = queue.popFirst()
        XCTAssertEqual(queue.oldestTimedOutAt, 150)
        let rest = queue.removeAll()
        XCTAssertEqual(rest.count, 1, "entry 5 is live, entry 4 timed out")
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(outcomes.current.keys.sorted(), [2, 4])
    }

    func testPendingQueueCompactsUnderDeepPipelines() {
        var queue = PendingCommands()
        var next: UInt64 = 1
        var expected: UInt64 = 1
        for _ in 0..<50 {
            for _ in 0..<3000 { queue.append(PendingCommand(seq: next, deadline: .max, start: 0, completion: { _ in })); next += 1 }
            for _ in 0..<2900 { XCTAssertEqual(queue.popFirst()?.seq, expected); expected += 1 }
        }
        XCTAssertEqual(queue.count, 50 * 100)
    }

    // MARK: arguments, values, scripts

    func testArgumentCommandNameMatchIgnoresCase() {
        XCTAssertTrue(RedisArgument("subscribe").equalsIgnoringCase("SUBSCRIBE"))
        XCTAssertTrue(RedisArgument(bytes: Array("PsUbScRiBe".utf8)).equalsIgnoringCase("PSUBSCRIBE"))
        XCTAssertFalse(RedisArgument("subscriber").equalsIgnoringCase("SUBSCRIBE"))
        XCTAssertTrue(RedisConnectionCore.changesReplyProtocol("client", ["client", "reply", "off"]))
        XCTAssertFalse(RedisConnectionCore.changesReplyProtocol("client", ["client", "list"]))
        XCTAssertFalse(RedisConnectionCore.changesReplyProtocol("get", ["get", "k"]))
    }

    func testSHA1MatchesKnownVectors() {
        XCTAssertEqual(RedisScript("").sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(RedisScript("abc").sha1, "a9993e364706816aba3e25717850c26c9cd0d89d")
        // What `redis-cli SCRIPT LOAD "return 1"` prints.
        XCTAssertEqual(RedisScript("return 1").sha1, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }

    func testValueAccessorsAndDescription() {
        XCTAssertEqual(RedisValue.string([0x41, 0x00, 0xff]).description, "\"A\\x00\\xff\"")
        XCTAssertEqual(RedisValue.string(Array("42".utf8)).integer, 42)
        XCTAssertNil(RedisValue.null.bytes)
        XCTAssertEqual(RedisError.server("WRONGTYPE Operation against a key").serverCode, "WRONGTYPE")
        XCTAssertNil(RedisError.timeout.serverCode)
    }
}

/// Our RESP encoder (commands go to hiredis pre-formatted), checked against the format written
/// out by hand for every length-digit count, empty and binary arguments, and the oversized path.
final class RESPCommandBufferTests: XCTestCase {
    private func encode(_ args: [RedisArgument], with buffer: RESPCommandBuffer = RESPCommandBuffer()) -> [UInt8] {
        buffer.withEncoded(args) { pointer, length in
            Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: length))
        }
    }

    private func expected(_ args: [[UInt8]]) -> [UInt8] {
        var out = Array("*\(args.count)\r\n".utf8)
        for a in args { out += Array("$\(a.count)\r\n".utf8) + a + Array("\r\n".utf8) }
        return out
    }

    func testEncodesLikeTheRESPSpecification() {
        XCTAssertEqual(encode(["SET", "k", "v"]), Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".utf8))
        XCTAssertEqual(encode(["PING"]), Array("*1\r\n$4\r\nPING\r\n".utf8))
        let buffer = RESPCommandBuffer()
        for size in [0, 1, 9, 10, 99, 100, 999, 1000, 4095, 4096, 65_535, 65_536, 70_000, 1 << 20] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            XCTAssertEqual(encode(["SET", "key", RedisArgument(bytes: payload)], with: buffer), expected([Array("SET".utf8), Array("key".utf8), payload]), "size \(size)")
        }
        // Twelve arguments: a two-digit count; the reused buffer still encodes small commands right.
        let many = (0..<12).map { RedisArgument("a\($0)") }
        XCTAssertEqual(encode(many, with: buffer), expected((0..<12).map { Array("a\($0)".utf8) }))
        XCTAssertEqual(encode(["GET", ""], with: buffer), Array("*2\r\n$3\r\nGET\r\n$0\r\n\r\n".utf8))
    }

    /// hiredis scans SUBSCRIBE commands with strchr: a short command encoded after a long one
    /// in the same buffer must end in NUL, not in the long command's leftover bytes.
    func testCommandIsNULTerminatedAfterALongerOne() {
        let buffer = RESPCommandBuffer()
        _ = encode(["SUBSCRIBE", RedisArgument(String(repeating: "$channel\r\n", count: 200))], with: buffer)
        buffer.withEncoded(["SUBSCRIBE", "a"]) { pointer, length in
            XCTAssertEqual(UInt8(bitPattern: pointer[length]), 0)
            XCTAssertEqual(strlen(pointer), length)
        }
    }
}
