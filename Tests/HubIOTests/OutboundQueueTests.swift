import Glibc
@testable import HubIO
import XCTest

/// The outbound queue against a fake socket that takes a limited number of bytes per write.
final class OutboundQueueTests: XCTestCase {
    /// Drains `queue` through writes of at most `budget` bytes each; returns what was "sent".
    private func drain(_ queue: inout OutboundQueue, budget: Int, maxWrites: Int = 10_000) -> [UInt8] {
        var sent: [UInt8] = []
        var writes = 0
        while !queue.isEmpty && writes < maxWrites {
            writes += 1
            _ = queue.flush { iov -> Int? in
                var left = budget
                var n = 0
                for v in iov where left > 0 {
                    let take = min(left, v.iov_len)
                    sent.append(contentsOf: UnsafeRawBufferPointer(start: v.iov_base, count: take))
                    left -= take
                    n += take
                }
                return n
            }
        }
        return sent
    }

    func testOrderIsKeptAcrossOwnedAndSharedChunksWithShortWrites() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var q = OutboundQueue()
            var expected: [UInt8] = []
            for i in 0..<Int.random(in: 1...30, using: &rng) {
                let bytes = (0..<Int.random(in: 0...50, using: &rng)).map { _ in UInt8(truncatingIfNeeded: i) }
                if Bool.random(using: &rng) {
                    q.append(bytes)
                } else {
                    q.append(shared: SharedBytes(bytes))
                }
                expected += bytes
            }
            XCTAssertEqual(q.count, expected.count)
            let sent = drain(&q, budget: Int.random(in: 1...40, using: &rng))
            XCTAssertEqual(sent, expected)
            XCTAssertTrue(q.isEmpty)
        }
    }

    func testAppendingWhilePartiallyWritten() {
        var q = OutboundQueue()
        q.append(Array("hello ".utf8))
        var sent = drain(&q, budget: 3, maxWrites: 1)
        q.append(shared: SharedBytes(Array("shared ".utf8)))
        q.append(Array("world".utf8))
        sent += drain(&q, budget: 4)
        XCTAssertEqual(String(decoding: sent, as: UTF8.self), "hello shared world")
    }

    func testSharedFrameIsNotCopied() {
        let frame = SharedBytes(Array(repeating: 7, count: 1024))
        var a = OutboundQueue(), b = OutboundQueue()
        a.append(shared: frame)
        b.append(shared: frame)
        var seen: [UnsafeMutableRawPointer?] = []
        for q in [a, b] {
            var q = q
            _ = q.flush { iov in seen.append(iov[0].iov_base); return nil }
        }
        XCTAssertEqual(seen[0], seen[1], "both queues must point at the same bytes")
        frame.bytes.withUnsafeBytes { XCTAssertEqual(UnsafeMutableRawPointer(mutating: $0.baseAddress), seen[0]) }
    }

    func testWouldBlockLeavesEverythingQueued() {
        var q = OutboundQueue()
        q.append(Array("abc".utf8))
        XCTAssertEqual(q.flush { _ in nil }, 0)
        XCTAssertEqual(q.count, 3)
    }

    func testMoreThanSixtyFourChunksNeedSeveralWrites() {
        var q = OutboundQueue()
        var expected: [UInt8] = []
        for i in 0..<200 {
            let b = [UInt8(i & 0xff)]
            q.append(shared: SharedBytes(b))
            expected += b
        }
        XCTAssertEqual(drain(&q, budget: 1_000_000), expected)
    }
}

final class OutboundQueueCapacityTests: XCTestCase {
    func testReleasingCapacityOnlyWhenEmpty() {
        var q = OutboundQueue()
        q.append(Array(repeating: 1, count: 300))
        q.releaseCapacityIfEmpty()
        XCTAssertEqual(q.count, 300, "queued bytes are never dropped")
        _ = q.flush { iov in iov.reduce(0) { $0 + $1.iov_len } }
        XCTAssertTrue(q.isEmpty)
        XCTAssertGreaterThan(q.tail.capacity, 0, "capacity is kept after a flush, for the next response")
        q.releaseCapacityIfEmpty()
        XCTAssertEqual(q.tail.capacity, 0, "an idle connection holds no output buffer")
        q.append(Array("again".utf8))
        XCTAssertEqual(q.count, 5)
    }
}
