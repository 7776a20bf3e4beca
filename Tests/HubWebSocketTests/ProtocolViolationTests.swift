// Each RFC 6455 / RFC 7692 violation and each limit maps to its close code, whatever the
// split of the input, and the reader ignores everything after the first error.

import XCTest
@testable import HubWebSocket

final class ProtocolViolationTests: XCTestCase {
    let hello = Array("Hello".utf8)
    let deflate = PerMessageDeflate.Parameters()

    func assertFails(_ input: [UInt8], code: UInt16, before events: [Recorded] = [], role: WebSocketRole = .server,
                     limits: WebSocketLimits = WebSocketLimits(), deflate: PerMessageDeflate.Parameters? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
        assertSplitInvariant(input, expected: events + [.failed(code)], role: role, limits: limits, deflate: deflate,
                             everySplit: input.count < 400, file: file, line: line)
    }

    func testMasking() {
        assertFails(frame(1, hello, mask: nil), code: 1002, role: .server)        // client must mask
        assertFails(frame(1, hello), code: 1002, role: .client)                   // server must not
        assertFails(frame(9, [], mask: nil), code: 1002, role: .server)
    }

    func testReservedBits() {
        assertFails(frame(1, hello, rsv2: true), code: 1002)
        assertFails(frame(1, hello, rsv3: true), code: 1002)
        assertFails(frame(1, hello, rsv1: true), code: 1002)                      // no deflate negotiated
        assertFails(frame(9, [], rsv1: true), code: 1002, deflate: deflate)       // never on control frames
        // Only the first frame of a compressed message carries RSV1.
        let first = frame(1, bytes("f2 48 cd"), fin: false, rsv1: true)
        assertFails(first + frame(0, bytes("c9 c9 07 00"), rsv1: true), code: 1002, deflate: deflate)
    }

    func testReservedOpcodes() {
        for opcode: UInt8 in [3, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assertFails(frame(opcode, []), code: 1002)
            assertFails(frame(1, hello) + frame(opcode, hello), code: 1002, before: [.text("Hello")])
        }
    }

    func testControlFrameRules() {
        assertFails(frame(9, [UInt8](repeating: 0, count: 126)), code: 1002)      // payload > 125
        assertFails(frame(9, hello, lengthForm: 16), code: 1002)                  // 126 marker is > 125 too
        assertFails(frame(9, hello, fin: false), code: 1002)                      // fragmented ping
        assertFails(frame(8, hello, fin: false), code: 1002)
        assertFails(frame(10, hello, fin: false), code: 1002)
    }

    func testFragmentationRules() {
        assertFails(frame(0, hello), code: 1002)                                  // nothing to continue
        assertFails(frame(0, hello, fin: false), code: 1002)
        assertFails(frame(1, hello) + frame(0, hello), code: 1002, before: [.text("Hello")])
        assertFails(frame(1, hello, fin: false) + frame(1, hello), code: 1002)    // new message inside one
        assertFails(frame(1, hello, fin: false) + frame(2, hello), code: 1002)
        assertFails(frame(2, hello, fin: false) + frame(9, []) + frame(1, hello), code: 1002, before: [.ping([])])
    }

    func testSixtyFourBitLengthWithTopBitSet() {
        var header: [UInt8] = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5]
        header += [1, 2, 3, 4] + [0, 0, 0, 0, 0]
        assertFails(header, code: 1002)
    }

    func testCloseFrameRules() {
        assertFails(frame(8, [0x03]), code: 1002)                                 // 1-byte payload
        for invalid: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assertFails(frame(8, [UInt8(invalid >> 8), UInt8(invalid & 0xFF)]), code: 1002)
        }
        for valid: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
            assertSplitInvariant(frame(8, [UInt8(valid >> 8), UInt8(valid & 0xFF)]), expected: [.close(valid, "")])
        }
        // Reason not UTF-8 (Autobahn 7.5.1's payload): 1007.
        assertFails(frame(8, [0x03, 0xE8] + bytes("ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64")), code: 1007)
    }

    func testCloseCodeValidityTable() {
        let valid = (0...UInt16(6000)).filter { WebSocketCloseCode($0).isValidOnWire }
        XCTAssertEqual(valid.count, 4 + 8 + 2000)
        XCTAssertFalse(WebSocketCloseCode(1004).isValidOnWire)
        XCTAssertFalse(WebSocketCloseCode.noStatusReceived.isValidOnWire)
        XCTAssertFalse(WebSocketCloseCode.abnormalClosure.isValidOnWire)
        XCTAssertFalse(WebSocketCloseCode(1015).isValidOnWire)
        XCTAssertTrue(WebSocketCloseCode(4999).isValidOnWire)
        XCTAssertFalse(WebSocketCloseCode(5000).isValidOnWire)
    }

    func testLimits() {
        let limits = WebSocketLimits(maxFrameBytes: 100, maxMessageBytes: 150)
        let ok = [UInt8](repeating: 0x61, count: 100)
        assertSplitInvariant(frame(2, ok), expected: [.binary(ok)], limits: limits)
        assertFails(frame(2, ok + [0]), code: 1009, limits: limits)                                // frame too big
        assertFails(frame(2, ok, fin: false) + frame(0, ok), code: 1009, limits: limits)           // message too big
        let exact = frame(1, Array(ok.prefix(75)), fin: false) + frame(0, Array(ok.prefix(75)))
        assertSplitInvariant(exact, expected: [.text(Array(ok.prefix(75)) + Array(ok.prefix(75)))], limits: limits)
        // The 1009 comes from the header (8 bytes with the masking key): no payload needs to arrive.
        XCTAssertEqual(parse(Array(frame(2, [UInt8](repeating: 0, count: 1000)).prefix(8)), limits: limits), [.failed(1009)])
        // A 64-bit length far beyond the limit (but below 2^63) is a 1009, not a crash.
        let huge: [UInt8] = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]
        assertFails(huge, code: 1009)
    }

    func testFailFastOnTheFirstTwoBytes() {
        // An unknown opcode is reported before the rest of the header (or payload) exists.
        XCTAssertEqual(parse([0x83, 0x85]), [.failed(1002)])
        XCTAssertEqual(parse([0x81]), [])
    }

    func testInputAfterAnErrorIsIgnoredAndStateIsReleased() {
        var reader = WebSocketReader(role: .server, deflate: nil)
        XCTAssertEqual(feed(&reader, frame(1, Array("Hel".utf8), fin: false) + frame(1, hello)), [.failed(1002)])
        XCTAssertTrue(reader.isFinished)
        XCTAssertEqual(reader.bufferedCapacity, 0)
        XCTAssertEqual(feed(&reader, frame(1, hello)), [])
    }

    func testErrorThrownByTheCallbackStopsTheReader() {
        struct Stop: Error {}
        var reader = WebSocketReader(role: .server, deflate: nil)
        var input = frame(1, hello) + frame(1, hello)
        var seen = 0
        XCTAssertThrowsError(try input.withUnsafeMutableBytes { buffer in
            try reader.read(buffer) { _ in
                seen += 1
                throw Stop()
            }
        })
        XCTAssertEqual(seen, 1)
        XCTAssertTrue(reader.isFinished)
    }

    func testInvalidCompressedData() {
        // Stored block whose NLEN is not the complement of LEN.
        assertFails(frame(2, bytes("00 05 00 00 00 48 65 6c 6c 6f"), rsv1: true), code: 1007, deflate: deflate)
        // A message that stops inside a block even after the tail is appended.
        assertFails(frame(2, bytes("f2 48"), rsv1: true), code: 1007, deflate: deflate)
    }
}
