import HubIO
import HubStore
import XCTest
@testable import HubServer

/// The rooms layer's pure parts, without sockets: ordering across nodes, the slow-subscriber
/// outbox, the resume decision, and the frame forms.
final class RoomLogicTests: XCTestCase {
    typealias Sequencer = RoomSequencer<Int>

    private func delivered(_ actions: [Sequencer.Action]) -> [Int] {
        actions.compactMap { if case .deliver(let n) = $0 { return n }; return nil }
    }

    func testSequencerDeliversInOrderAndFillsGapsFromTheStream() {
        var s = Sequencer()
        // Before the position is known, arrivals wait; those at or before it are in the stream.
        XCTAssertTrue(s.receive(offset: 10, epoch: "e", 10).isEmpty)
        XCTAssertTrue(s.receive(offset: 11, epoch: "e", 11).isEmpty)
        XCTAssertEqual(delivered(s.start(epoch: "e", offset: 10)), [11])
        XCTAssertEqual(delivered(s.receive(offset: 12, epoch: "e", 12)), [12])
        XCTAssertEqual(delivered(s.receive(offset: 12, epoch: "e", 12)), [], "a duplicate is dropped")
        // 14 before 13: a fill after 12 is asked for, once.
        let gap = s.receive(offset: 14, epoch: "e", 14)
        guard case .fill(let after, let epoch) = gap.first, gap.count == 1 else { return XCTFail("\(gap)") }
        XCTAssertEqual(after, 12)
        XCTAssertEqual(epoch, "e")
        XCTAssertTrue(s.receive(offset: 15, epoch: "e", 15).isEmpty, "one fill at a time")
        XCTAssertTrue(s.receive(offset: 13, epoch: "e", 13).isEmpty, "13 arrived late; it waits for the fill too")
        XCTAssertEqual(delivered(s.filled([(13, 113), (14, 114), (15, 115)], epoch: "e")), [113, 114, 115], "the stream's copies, in order")
        XCTAssertEqual(s.last, 15)
        XCTAssertEqual(delivered(s.receive(offset: 16, epoch: "e", 16)), [16])
    }

    func testSequencerGivesUpAroundAGapItCannotFill() {
        var s = Sequencer()
        _ = s.start(epoch: "e", offset: 0)
        _ = s.receive(offset: 3, epoch: "e", 3)
        _ = s.receive(offset: 2, epoch: "e", 2)
        XCTAssertEqual(delivered(s.fillFailed()), [2, 3], "the store is away: deliver what is there, in order")
        _ = s.receive(offset: 6, epoch: "e", 6)
        XCTAssertEqual(delivered(s.filled([(5, 5)], epoch: "e")), [5, 6], "offset 4 was trimmed: around it")
        // A new epoch (history lost): followed from its first event, no waiting.
        XCTAssertEqual(delivered(s.receive(offset: 1, epoch: "f", 1)), [1])
        XCTAssertEqual(s.epoch, "f")
        XCTAssertEqual(delivered(s.receive(offset: 2, epoch: "f", 2)), [2])
        _ = s.receive(offset: 4, epoch: "f", 4)
        XCTAssertEqual(delivered(s.filled([(1, 1)], epoch: "g")), [4], "a fill from yet another epoch is not used")
    }

    func testOutboxDropsOldestLogsNeverStatusAndClosesPastTheHardLimit() {
        var o = SubscriberOutbox<Int>(softLimit: 1000, hardLimit: 3000)
        XCTAssertEqual(o.offer(0, size: 100, isLog: true), .write, "writes straight through while the socket keeps up")
        o.markBackpressured()
        var n = 1
        // Ten logs and three status events of 100 bytes, interleaved: 1300 bytes > 1000.
        for i in 0..<13 {
            XCTAssertEqual(o.offer(n, size: 100, isLog: i % 4 != 3), .queued)
            n += 1
        }
        XCTAssertLessThanOrEqual(o.bytes, 1000)
        XCTAssertGreaterThan(o.dropped, 0)
        o.writable()
        let dropped = o.takeDropped()
        var out: [Int] = []
        while let item = o.next() { out.append(item.frame) }
        XCTAssertEqual(out.count + dropped, 13, "each waiting event is written or counted as dropped")
        XCTAssertTrue([4, 8, 12].allSatisfy(out.contains), "status events are never dropped: \(out)")
        XCTAssertEqual(out, out.sorted(), "order kept")
        XCTAssertEqual(Array(out.suffix(2)), [12, 13], "the newest logs survive")
        XCTAssertEqual(o.takeDropped(), 0)
        // Status events only: kept until the hard limit, then close.
        o.markBackpressured()
        var result = SubscriberOutbox<Int>.Offer.queued
        var offered = 0
        while result == .queued {
            result = o.offer(0, size: 100, isLog: false)
            offered += 1
        }
        XCTAssertEqual(result, .close)
        XCTAssertEqual(offered, 31, "3000 bytes of status events fit; the next one closes")
    }

    func testResumeReplaysExactlyOrNothing() {
        func entries(_ r: ClosedRange<UInt64>) -> [StreamEntry] { r.map { StreamEntry(offset: $0, payload: [UInt8($0)]) } }
        let now = StreamPosition(offset: 9, epoch: "e")
        let full = StreamRead(entries: entries(6...9), latestOffset: 9, recovered: true, epoch: "e")
        XCTAssertEqual(RoomResume.plan(since: .init(epoch: "e", offset: 5), pages: [full], current: now),
                       .init(recovered: true, offset: 9, replay: entries(6...9)))
        XCTAssertEqual(RoomResume.plan(since: .init(epoch: "x", offset: 5), pages: [full], current: now),
                       .init(recovered: false, offset: 9, replay: []), "another epoch")
        let trimmed = StreamRead(entries: entries(7...9), latestOffset: 9, recovered: false, epoch: "e")
        XCTAssertEqual(RoomResume.plan(since: .init(epoch: "e", offset: 5), pages: [trimmed], current: now).recovered, false, "a gap older than the history")
        let holed = StreamRead(entries: entries(6...6) + entries(8...9), latestOffset: 9, recovered: true, epoch: "e")
        XCTAssertEqual(RoomResume.plan(since: .init(epoch: "e", offset: 5), pages: [holed], current: now).replay, [], "never a partial replay")
        let pages = [StreamRead(entries: entries(6...7), latestOffset: 9, recovered: true, epoch: "e"),
                     StreamRead(entries: entries(8...9), latestOffset: 9, recovered: true, epoch: "e")]
        XCTAssertEqual(RoomResume.plan(since: .init(epoch: "e", offset: 5), pages: pages, current: now).replay, entries(6...9), "pages join")
        XCTAssertEqual(RoomResume.plan(since: .init(epoch: "e", offset: 9), pages: [StreamRead(entries: [], latestOffset: 9, recovered: true, epoch: "e")],
                                       current: now), .init(recovered: true, offset: 9, replay: []), "up to date")
    }

    func testFrameFormsAgree() throws {
        let stored = Array(#"{"event":"execution.log","data":{"seq":1,"data":"a\nb"},"at":"2026-12-06T00:00:00.000Z"}"#.utf8)
        let text = RoomFrame.text(room: "session:x", offset: 7, epoch: "00ff", stored: stored)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any])
        XCTAssertEqual(json["type"] as? String, "event")
        XCTAssertEqual(json["room"] as? String, "session:x")
        XCTAssertEqual(json["offset"] as? Int, 7)
        XCTAssertEqual(json["epoch"] as? String, "00ff")
        XCTAssertEqual(json["event"] as? String, "execution.log")
        XCTAssertEqual((json["data"] as? [String: Any])?["data"] as? String, "a\nb")
        let published = RoomFrame.published(room: "session:x", offset: 7, epoch: "00ff", stored: stored)
        let frame = try XCTUnwrap(RoomFrame(published: published))
        XCTAssertEqual(frame.offset, 7)
        XCTAssertEqual(frame.epoch, "00ff")
        XCTAssertTrue(frame.isLog)
        XCTAssertEqual(frame.bytes.bytes, RoomFrame(room: "session:x", offset: 7, epoch: "00ff", stored: stored).bytes.bytes,
                       "live and replayed frames are the same bytes")
        XCTAssertFalse(RoomFrame(room: "r", offset: 1, epoch: "e", stored: Array(#"{"event":"command.status","data":{}}"#.utf8)).isLog)
        XCTAssertNil(RoomFrame(published: Array("garbage".utf8)))
        XCTAssertNil(RoomFrame(published: Array("x e S\n{}".utf8)))
    }
}
