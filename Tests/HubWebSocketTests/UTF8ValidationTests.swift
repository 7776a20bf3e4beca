// UTF-8 edge cases in the spirit of Markus Kuhn's UTF-8 decoder stress test (and Autobahn's
// 6.x cases, which are built from it), for the validator alone and through the reader,
// including fail-fast inside a frame whose rest has not arrived.

import XCTest
@testable import HubWebSocket

final class UTF8ValidationTests: XCTestCase {
    func valid(_ b: [UInt8]) -> Bool { b.withUnsafeBytes { UTF8StreamValidator.isValid($0) } }

    let validCases: [(String, [UInt8])] = [
        ("empty", []),
        ("ascii", Array("hello, world".utf8)),
        ("kosme", bytes("ce ba e1 bd b9 cf 83 ce bc ce b5")),
        ("first 1-byte U+0000", [0x00]),
        ("first 2-byte U+0080", bytes("c2 80")),
        ("first 3-byte U+0800", bytes("e0 a0 80")),
        ("first 4-byte U+10000", bytes("f0 90 80 80")),
        ("last 1-byte U+007F", [0x7F]),
        ("last 2-byte U+07FF", bytes("df bf")),
        ("last 3-byte U+FFFF", bytes("ef bf bf")),
        ("last 4-byte U+10FFFF", bytes("f4 8f bf bf")),
        ("U+D7FF", bytes("ed 9f bf")),
        ("U+E000", bytes("ee 80 80")),
        ("U+FFFD", bytes("ef bf bd")),
        ("noncharacter U+FFFE is still valid UTF-8", bytes("ef bf be")),
        ("mixed", Array("a€𝄞é\u{10FFFF}z".utf8)),
    ]

    let invalidCases: [(String, [UInt8])] = [
        ("lone continuation 80", [0x80]),
        ("lone continuation bf", [0xBF]),
        ("C0 never valid", bytes("c0 80")),
        ("C1 never valid", bytes("c1 bf")),
        ("overlong 2-byte '/'", bytes("c0 af")),
        ("overlong 3-byte '/'", bytes("e0 80 af")),
        ("overlong 4-byte '/'", bytes("f0 80 80 af")),
        ("overlong max 3-byte U+07FF", bytes("e0 9f bf")),
        ("overlong max 4-byte U+FFFF", bytes("f0 8f bf bf")),
        ("overlong 5-byte", bytes("f8 80 80 80 af")),
        ("surrogate U+D800", bytes("ed a0 80")),
        ("surrogate U+DBFF", bytes("ed af bf")),
        ("surrogate U+DC00", bytes("ed b0 80")),
        ("surrogate U+DFFF", bytes("ed bf bf")),
        ("surrogate pair", bytes("ed a0 80 ed b0 80")),
        ("U+110000", bytes("f4 90 80 80")),
        ("F5", bytes("f5 80 80 80")),
        ("FE", [0xFE]),
        ("FF", [0xFF]),
        ("truncated 2-byte", bytes("c2")),
        ("truncated 3-byte", bytes("e2 82")),
        ("truncated 4-byte", bytes("f0 9f 98")),
        ("lead then ascii", bytes("c2 41")),
        ("3-byte lead then ascii", bytes("e2 41 41")),
        ("valid then invalid", Array("κόσμε".utf8) + [0xED, 0xA0, 0x80] + Array("edited".utf8)),
    ]

    func testValidatorWhole() {
        for (name, b) in validCases { XCTAssertTrue(valid(b), name) }
        for (name, b) in invalidCases { XCTAssertFalse(valid(b), name) }
    }

    func testValidatorAtEverySplit() {
        // A sequence cut anywhere is fine: only the final verdict may differ from "in progress".
        for (name, b) in validCases + invalidCases {
            let expected = valid(b)
            for point in 0...b.count {
                var v = UTF8StreamValidator()
                let first = Array(b[..<point]), second = Array(b[point...])
                let okFirst = first.withUnsafeBytes { v.feed($0) }
                let okSecond = second.withUnsafeBytes { v.feed($0) }
                XCTAssertEqual(okFirst && okSecond && v.isComplete, expected, "\(name) split at \(point)")
            }
        }
    }

    func testValidatorRejectsAtTheEarliestByte() {
        // The byte at which each sequence becomes impossible: fed up to and including it → false,
        // fed up to just before it → still true.
        let cases: [([UInt8], Int)] = [
            (bytes("e0 80 af"), 1), (bytes("ed a0 80"), 1), (bytes("f4 90 80 80"), 1), (bytes("f0 8f bf bf"), 1),
            (bytes("c0 80"), 0), (bytes("f5"), 0), (bytes("41 42 80"), 2), (bytes("e2 82 41"), 2),
        ]
        for (b, at) in cases {
            var v = UTF8StreamValidator()
            XCTAssertTrue(Array(b[..<at]).withUnsafeBytes { v.feed($0) }, "\(b)")
            XCTAssertFalse(Array(b[at...at]).withUnsafeBytes { v.feed($0) }, "\(b)")
            XCTAssertTrue(v.hasFailed)
        }
    }

    func testLongAsciiFastPathAndNonAsciiAtEveryOffset() {
        for offset in 0..<24 {
            var b = [UInt8](repeating: 0x61, count: 40)
            b[offset] = 0xFF
            XCTAssertFalse(valid(b), "offset \(offset)")
            var ok = [UInt8](repeating: 0x61, count: 40)
            ok.replaceSubrange(offset..<offset + 3, with: [0xE2, 0x82, 0xAC])
            XCTAssertTrue(valid(ok), "offset \(offset)")
        }
    }

    func testReaderRejectsInvalidTextMessages() {
        for (name, b) in invalidCases {
            XCTAssertEqual(parse(frame(1, b)), [.failed(1007)], name)
            // Fragmented one byte per frame: sequences cut at frame boundaries.
            var input: [UInt8] = []
            for (i, byte) in b.enumerated() { input += frame(i == 0 ? 1 : 0, [byte], fin: i == b.count - 1) }
            XCTAssertEqual(parse(input), [.failed(1007)], "\(name), fragmented")
        }
        for (name, b) in validCases {
            var input: [UInt8] = []
            for (i, byte) in b.enumerated() { input += frame(i == 0 ? 1 : 0, [byte], fin: i == b.count - 1) }
            if b.isEmpty { input = frame(1, []) }
            XCTAssertEqual(parse(input), [.text(b)], "\(name), fragmented")
        }
        // Binary messages are not validated.
        XCTAssertEqual(parse(frame(2, [0xFF, 0xFE])), [.binary([0xFF, 0xFE])])
    }

    func testFailFastInsideAPartialFrame() {
        // Autobahn 6.4.x: the frame announces 100 bytes; the invalid byte arrives early and the
        // rest of the payload never does. The reader must fail on what it has.
        let payload = Array("κόσμε".utf8) + [0xF4, 0x90, 0x80, 0x80] + [UInt8](repeating: 0x61, count: 87)
        let whole = frame(1, payload)
        let headerSize = 2 + 4
        let upToInvalid = headerSize + Array("κόσμε".utf8).count + 2       // lead byte and the impossible byte
        XCTAssertEqual(parse(Array(whole.prefix(upToInvalid - 1))), [])
        XCTAssertEqual(parse(Array(whole.prefix(upToInvalid))), [.failed(1007)])
        // Same inside the second fragment of a fragmented message.
        let first = frame(1, Array("hello".utf8), fin: false)
        XCTAssertEqual(parse(first + Array(frame(0, [0x61, 0xC0, 0x61, 0x61, 0x61]).prefix(8))), [.failed(1007)])
        // And with compression: the inflated text is validated as it comes out.
        let deflate = PerMessageDeflate.Parameters()
        var out: [UInt8] = []
        var writer = WebSocketWriter(role: .client, deflate: deflate, compressionThreshold: 0)
        let bad = [UInt8](repeating: 0x61, count: 5000) + [0xFF] + [UInt8](repeating: 0x62, count: 50000)
        bad.withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &out) }
        var reader = WebSocketReader(role: .server, deflate: deflate)
        // Send the frame without its last byte: the message is not complete, the error is.
        XCTAssertEqual(feed(&reader, Array(out.dropLast())), [.failed(1007)])
    }

    func testSequenceSplitAcrossFrameBoundaryIsFine() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        let input = frame(1, [0x61, euro[0]], fin: false) + frame(9, []) + frame(0, [euro[1]], fin: false) + frame(0, [euro[2]])
        assertSplitInvariant(input, expected: [.ping([]), .text([0x61] + euro)])
        // ... but not at the end of the message.
        XCTAssertEqual(parse(frame(1, [0x61, euro[0]], fin: false) + frame(0, [euro[1]])), [.failed(1007)])
    }
}
