@testable import HubIO
import XCTest

final class TimerHeapTests: XCTestCase {
    func testTimersFireInDeadlineOrderAndOnlyWhenDue() {
        var heap = TimerHeap()
        var fired: [UInt64] = []
        let deadlines: [UInt64] = (0..<500).map { _ in UInt64.random(in: 1...10_000) }
        for d in deadlines { heap.push(TimerHandle(deadline: d, action: { fired.append(d) })) }
        XCTAssertNil(heap.popDue(now: 0))
        var now: UInt64 = 0
        while let next = heap.nextDeadline {
            now = next
            while let h = heap.popDue(now: now) { h.action() }
        }
        XCTAssertEqual(fired, deadlines.sorted())
    }
}
