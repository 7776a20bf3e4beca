import Foundation
import HubCommands
import XCTest
@testable import HubServer

/// The device socket's log pipeline without a socket: one batch written at a time in arrival
/// order, a bounded wait, the line budget, and the memory of held commands.
final class DeviceStreamStateTests: XCTestCase {
    private func batch(_ id: String, lines: Int = 1, command: UUID = UUID()) -> DeviceStreamState.Batch {
        DeviceStreamState.Batch(id: id, commandID: command, lines: (1...lines).map { DeviceStreamService.Line(stream: .stdout, seq: Int64($0), data: "x") })
    }

    func testBatchesAreWrittenOneAtATimeInArrivalOrder() {
        var s = DeviceStreamState()
        XCTAssertEqual(s.arrive(batch("a"), now: 0), .start)
        XCTAssertEqual(s.arrive(batch("b"), now: 0), .queued)
        XCTAssertEqual(s.arrive(batch("c"), now: 0), .queued)
        XCTAssertEqual(s.finished()?.id, "b")
        XCTAssertTrue(s.writing)
        XCTAssertEqual(s.finished()?.id, "c")
        XCTAssertNil(s.finished())
        XCTAssertFalse(s.writing)
        XCTAssertEqual(s.arrive(batch("d"), now: 0), .start, "idle again: the next batch starts at once")
    }

    func testTheWaitIsBounded() {
        var s = DeviceStreamState()
        XCTAssertEqual(s.arrive(batch("first"), now: 0), .start)
        for i in 0..<DeviceStreamState.maxQueued { XCTAssertEqual(s.arrive(batch("\(i)"), now: 0), .queued) }
        guard case .refuse(let code, _) = s.arrive(batch("over"), now: 0) else { return XCTFail("a full wait refuses") }
        XCTAssertEqual(code, "rate_limited")
        XCTAssertEqual(s.finished()?.id, "0", "the refused batch did not take a place")
    }

    func testTheLineBudgetRefillsWithTime() {
        var s = DeviceStreamState()
        // The burst goes through (written and finished one by one), then the budget is spent.
        var now: UInt64 = 1
        var sent = 0
        while sent + 100 <= s.burst {
            XCTAssertEqual(s.arrive(batch("b\(sent)", lines: 100), now: now), .start)
            XCTAssertNil(s.finished())
            sent += 100
        }
        guard case .refuse(let code, _) = s.arrive(batch("over", lines: 100), now: now) else { return XCTFail("past the burst") }
        XCTAssertEqual(code, "rate_limited")
        XCTAssertFalse(s.spend(1, now: now), "a status counts against the same budget")
        // A quarter of a second later, over 100 lines' worth came back.
        now += 250_000_000
        XCTAssertEqual(s.arrive(batch("later", lines: 100), now: now), .start)
    }

    func testHeldCommandsAreTrustedForAWhileAndForgotten() {
        var s = DeviceStreamState()
        let held = DeviceStreamService.HeldCommand(commandID: UUID(), sessionID: UUID())
        XCTAssertNil(s.held(held.commandID, now: 0))
        s.remember(held, now: 10)
        XCTAssertEqual(s.held(held.commandID, now: 10 + DeviceStreamState.heldFor - 1), held)
        XCTAssertNil(s.held(held.commandID, now: 10 + DeviceStreamState.heldFor), "read again after heldFor")
        s.remember(held, now: 20)
        s.forget(held.commandID)
        XCTAssertNil(s.held(held.commandID, now: 20), "a result through the socket forgets it")
        // Bounded: past maxHeld the memory starts over.
        for _ in 0..<DeviceStreamState.maxHeld { s.remember(DeviceStreamService.HeldCommand(commandID: UUID(), sessionID: UUID()), now: 30) }
        s.remember(held, now: 30)
        XCTAssertEqual(s.held(held.commandID, now: 30), held)
    }
}
