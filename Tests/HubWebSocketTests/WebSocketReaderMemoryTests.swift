// Per-connection footprint: the inline sizes written down in the reader's and writer's doc
// comments, and that an idle connection's codec holds no heap memory.

import XCTest
@testable import HubWebSocket

final class WebSocketReaderMemoryTests: XCTestCase {
    func testInlineSizes() {
        let reader = MemoryLayout<WebSocketReader>.size
        let writer = MemoryLayout<WebSocketWriter>.size
        print("MemoryLayout<WebSocketReader>.size = \(reader), stride = \(MemoryLayout<WebSocketReader>.stride)")
        print("MemoryLayout<WebSocketWriter>.size = \(writer), stride = \(MemoryLayout<WebSocketWriter>.stride)")
        print("MemoryLayout<UTF8StreamValidator>.size = \(MemoryLayout<UTF8StreamValidator>.size)")
        // The figures in the doc comments; update both together.
        XCTAssertEqual(reader, 82)
        XCTAssertEqual(writer, 21)
        XCTAssertEqual(MemoryLayout<UTF8StreamValidator>.size, 1)
    }

    func testIdleConnectionHoldsNoHeap() {
        var reader = WebSocketReader(role: .server, deflate: PerMessageDeflate.Parameters(clientNoContextTakeover: true))
        XCTAssertEqual(reader.bufferedCapacity, 0)
        XCTAssertFalse(reader.holdsInflater)
        // Whole frames: nothing is copied into the reader.
        _ = feed(&reader, frame(1, Array("hello".utf8)) + frame(9, []) + frame(2, [1, 2, 3]))
        XCTAssertEqual(reader.bufferedCapacity, 0)
        // A large message split across reads is buffered, then the buffer is released because it
        // is above the retained capacity.
        let big = [UInt8](repeating: 7, count: 100_000)
        let wire = frame(2, big)
        XCTAssertEqual(feed(&reader, wire, pieces: [50_000, wire.count - 50_000]), [.binary(big)])
        XCTAssertEqual(reader.bufferedCapacity, 0)
        // A small split message keeps a small buffer for the next one.
        XCTAssertEqual(feed(&reader, frame(2, [1, 2, 3, 4]), pieces: [7]), [.binary([1, 2, 3, 4])])
        XCTAssertLessThanOrEqual(reader.bufferedCapacity, WebSocketReader.retainedBufferCapacity)
    }
}
