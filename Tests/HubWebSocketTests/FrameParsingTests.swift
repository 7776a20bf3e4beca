// RFC 6455 §5.7 example frames and other well-formed input, parsed whole, byte by byte, at
// every split point and at random splits; plus the encoder's output for the same examples.

import XCTest
@testable import HubWebSocket

final class FrameParsingTests: XCTestCase {
    let hello = Array("Hello".utf8)

    // MARK: RFC 6455 §5.7

    func testSingleFrameUnmaskedText() {
        // Server → client, so parsed in the client role (which requires unmasked frames).
        assertSplitInvariant(bytes("81 05 48 65 6c 6c 6f"), expected: [.text("Hello")], role: .client)
    }

    func testSingleFrameMaskedText() {
        assertSplitInvariant(bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58"), expected: [.text("Hello")], role: .server)
    }

    func testFragmentedUnmaskedText() {
        assertSplitInvariant(bytes("01 03 48 65 6c 80 02 6c 6f"), expected: [.text("Hello")], role: .client)
    }

    func testUnmaskedPingAndMaskedPong() {
        assertSplitInvariant(bytes("89 05 48 65 6c 6c 6f"), expected: [.ping(hello)], role: .client)
        assertSplitInvariant(bytes("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), expected: [.pong(hello)], role: .server)
    }

    func testBinary256BytesSixteenBitLength() {
        let payload = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let input = bytes("82 7e 01 00") + payload
        assertSplitInvariant(input, expected: [.binary(payload)], role: .client)
        assertSplitInvariant(frame(2, payload), expected: [.binary(payload)], role: .server)
    }

    func testBinary64KiBSixtyFourBitLength() {
        let payload = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
        let input = bytes("82 7f 00 00 00 00 00 01 00 00") + payload
        // Every split point of a 64 KiB frame would be 65k runs; the header region and
        // random splits cover the same code paths.
        assertSplitInvariant(input, expected: [.binary(payload)], role: .client, everySplit: false, randomRuns: 20)
        for point in 0...12 {
            XCTAssertEqual(parse(input, pieces: splitAt(point, of: input.count), role: .client), [.binary(payload)])
        }
        assertSplitInvariant(frame(2, payload), expected: [.binary(payload)], role: .server, everySplit: false, randomRuns: 20)
    }

    func testEncoderProducesRFCExamples() {
        var out: [UInt8] = []
        hello.withUnsafeBytes { WebSocketFrameEncoder.encode(.text, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("81 05 48 65 6c 6c 6f"))
        out = []
        hello.withUnsafeBytes { WebSocketFrameEncoder.encode(.text, payload: $0, maskingKey: 0x3D21_FA37, into: &out) }
        XCTAssertEqual(out, bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        out = []
        Array("Hel".utf8).withUnsafeBytes { WebSocketFrameEncoder.encode(.text, payload: $0, fin: false, into: &out) }
        Array("lo".utf8).withUnsafeBytes { WebSocketFrameEncoder.encode(.continuation, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("01 03 48 65 6c 80 02 6c 6f"))
        out = []
        let p256 = [UInt8](repeating: 1, count: 256)
        p256.withUnsafeBytes { WebSocketFrameEncoder.encode(.binary, payload: $0, into: &out) }
        XCTAssertEqual(Array(out.prefix(4)), bytes("82 7e 01 00"))
        XCTAssertEqual(out.count, 260)
        out = []
        let p64k = [UInt8](repeating: 2, count: 65536)
        p64k.withUnsafeBytes { WebSocketFrameEncoder.encode(.binary, payload: $0, into: &out) }
        XCTAssertEqual(Array(out.prefix(10)), bytes("82 7f 00 00 00 00 00 01 00 00"))
        XCTAssertEqual(out.count, 65546)
        // 125/126 and 65535/65536 are where the length forms change.
        for n in [0, 125, 126, 65535, 65536] {
            XCTAssertEqual(WebSocketFrameEncoder.headerSize(payloadCount: n, masked: false), n <= 125 ? 2 : (n <= 65535 ? 4 : 10))
        }
    }

    func testMaskedEncodingRoundTripsThroughServerReader() {
        var rng = SplitMix64(seed: 42)
        for n in [0, 1, 3, 7, 8, 9, 31, 32, 33, 125, 126, 1000, 70000] {
            let payload = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var out: [UInt8] = []
            payload.withUnsafeBytes {
                WebSocketFrameEncoder.encode(.binary, payload: $0, maskingKey: UInt32.random(in: 0...UInt32.max, using: &rng), into: &out)
            }
            XCTAssertEqual(parse(out, role: .server), [.binary(payload)], "n=\(n)")
            XCTAssertEqual(parse(out, pieces: randomPieces(out.count, using: &rng, maxPiece: 13), role: .server), [.binary(payload)], "n=\(n)")
        }
    }

    // MARK: Other well-formed input

    func testNonMinimalLengthsAreAccepted() {
        // RFC 6455 §5.2 requires minimal lengths of senders only; receivers accept the rest.
        assertSplitInvariant(frame(1, hello, lengthForm: 16), expected: [.text("Hello")])
        assertSplitInvariant(frame(1, hello, lengthForm: 64), expected: [.text("Hello")])
    }

    func testControlFramesInterleaveAFragmentedMessage() {
        let input = frame(1, Array("Hel".utf8), fin: false) + frame(9, Array("p1".utf8)) + frame(0, [], fin: false)
            + frame(10, []) + frame(0, Array("lo".utf8)) + frame(2, [1, 2, 3])
        assertSplitInvariant(input, expected: [.ping(Array("p1".utf8)), .pong([]), .text("Hello"), .binary([1, 2, 3])])
    }

    func testEmptyMessagesAndManyFramesInOneRead() {
        var input: [UInt8] = []
        var expected: [Recorded] = []
        for i in 0..<50 {
            let payload = Array("message \(i)".utf8)
            input += frame(i % 2 == 0 ? 1 : 2, payload)
            expected.append(i % 2 == 0 ? .text(payload) : .binary(payload))
        }
        input += frame(1, []) + frame(2, []) + frame(9, [])
        expected += [.text([]), .binary([]), .ping([])]
        assertSplitInvariant(input, expected: expected, everySplit: false, randomRuns: 100)
    }

    func testCloseFrames() {
        assertSplitInvariant(frame(8, []), expected: [.close(nil, "")])
        assertSplitInvariant(frame(8, [0x03, 0xE8]), expected: [.close(1000, "")])
        assertSplitInvariant(frame(8, [0x0F, 0xA0] + Array("bye ✓".utf8)), expected: [.close(4000, "bye ✓")])
        // 123 bytes of reason: the largest close payload (125).
        let reason = String(repeating: "*", count: 123)
        assertSplitInvariant(frame(8, [0x03, 0xE8] + Array(reason.utf8)), expected: [.close(1000, reason)], everySplit: false)
    }

    func testInputAfterCloseIsIgnored() {
        // Garbage (and even a masking violation) after the close frame is never looked at.
        let input = frame(8, [0x03, 0xE8]) + frame(1, hello) + [0xFF, 0xFF, 0x00]
        assertSplitInvariant(input, expected: [.close(1000, "")])
        var reader = WebSocketReader(role: .server, deflate: nil)
        XCTAssertEqual(feed(&reader, frame(8, [])), [.close(nil, "")])
        XCTAssertTrue(reader.isFinished)
        XCTAssertEqual(feed(&reader, frame(1, hello)), [])
    }

    func testZeroCopyDeliveryPointsIntoTheCallersBuffer() {
        var input = frame(1, hello)
        var reader = WebSocketReader(role: .server, deflate: nil)
        var delivered: UnsafeRawPointer?
        input.withUnsafeMutableBytes { buffer in
            try! reader.read(buffer) { event in
                if case .text(let p) = event { delivered = p.baseAddress }
            }
            XCTAssertEqual(delivered, UnsafeRawPointer(buffer.baseAddress! + 6))
        }
        // ... and the payload was unmasked in place.
        XCTAssertEqual(Array(input[6...]), hello)
        XCTAssertEqual(reader.bufferedCapacity, 0)
    }

    func testClosePayloadTruncatesOnACharacterBoundary() {
        XCTAssertEqual(WebSocketFrameEncoder.closePayload(.normal, reason: "ok"), [0x03, 0xE8, 0x6F, 0x6B])
        let long = String(repeating: "é", count: 100)              // 200 bytes of 2-byte characters
        let payload = WebSocketFrameEncoder.closePayload(.goingAway, reason: long)
        XCTAssertLessThanOrEqual(payload.count, 125)
        XCTAssertEqual(payload.count, 2 + 122)                      // 61 whole characters
        XCTAssertTrue(payload[2...].withUnsafeBytes { UTF8StreamValidator.isValid($0) })
        let mixed = String(repeating: "a", count: 122) + "€"        // € is 3 bytes: would end at 125
        XCTAssertEqual(WebSocketFrameEncoder.closePayload(.normal, reason: mixed).count, 2 + 122)
    }

    func testMaskApplyAtEveryPhaseAndLength() {
        let key: UInt32 = 0xA1B2_C3D4
        let k = [UInt8(0xD4), 0xC3, 0xB2, 0xA1]
        for phase in 0..<4 {
            for n in 0..<70 {
                var data = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 13) }
                let expected = data.enumerated().map { $0.element ^ k[($0.offset + phase) % 4] }
                let next = data.withUnsafeMutableBytes { WebSocketMask.apply(key: key, phase: phase, to: $0) }
                XCTAssertEqual(data, expected, "phase \(phase) n \(n)")
                XCTAssertEqual(next, (phase + n) % 4)
            }
        }
    }
}
