// RFC 7692: the §7.2.3 examples, the writer's output, context takeover in both directions,
// bounded inflation, negotiation, and the memory rule (no zlib state between messages
// without context takeover).

import Foundation
import XCTest
@testable import HubWebSocket

final class PerMessageDeflateTests: XCTestCase {
    let takeover = PerMessageDeflate.Parameters()
    let noTakeover = PerMessageDeflate.Parameters(serverNoContextTakeover: true, clientNoContextTakeover: true)
    let hello = Array("Hello".utf8)

    // MARK: RFC 7692 §7.2.3 (server → client frames, so parsed in the client role)

    func testCompressedHello() {
        assertSplitInvariant(bytes("c1 07 f2 48 cd c9 c9 07 00"), expected: [.text("Hello")], role: .client, deflate: takeover)
        assertSplitInvariant(frame(1, bytes("f2 48 cd c9 c9 07 00"), rsv1: true), expected: [.text("Hello")], role: .server,
                             deflate: takeover)
    }

    func testFragmentedCompressedHello() {
        assertSplitInvariant(bytes("41 03 f2 48 cd 80 04 c9 c9 07 00"), expected: [.text("Hello")], role: .client, deflate: takeover)
    }

    func testSharedSlidingWindow() {
        // With context takeover the second "Hello" refers back to the first.
        let input = bytes("c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00")
        assertSplitInvariant(input, expected: [.text("Hello"), .text("Hello")], role: .client, deflate: takeover)
        // Without it, each message is compressed from scratch: the same bytes twice.
        let independent = bytes("c1 07 f2 48 cd c9 c9 07 00 c1 07 f2 48 cd c9 c9 07 00")
        assertSplitInvariant(independent, expected: [.text("Hello"), .text("Hello")], role: .client, deflate: noTakeover)
        // The back-reference is meaningless to a reader that reset its window: it must fail, not
        // deliver garbage.
        XCTAssertEqual(parse(input, role: .client, deflate: noTakeover).last, .failed(1007))
    }

    func testStoredBlock() {
        assertSplitInvariant(bytes("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00"), expected: [.text("Hello")], role: .client,
                             deflate: takeover)
    }

    func testBFinalBlock() {
        let input = bytes("c1 08 f3 48 cd c9 c9 07 00 00")
        assertSplitInvariant(input + input, expected: [.text("Hello"), .text("Hello")], role: .client, deflate: takeover)
    }

    func testTwoBlocksInOneMessage() {
        assertSplitInvariant(bytes("c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00"), expected: [.text("Hello")], role: .client,
                             deflate: takeover)
    }

    func testEmptyCompressedMessages() {
        // 0x00 is what a sync flush of nothing leaves after the tail is stripped (§7.2.3.6);
        // a zero-length RSV1 frame is taken as an empty message too.
        assertSplitInvariant(bytes("c1 01 00") + bytes("c2 00"), expected: [.text([]), .binary([])], role: .client, deflate: takeover)
    }

    // MARK: Writer

    func testWriterProducesTheRFCBytes() {
        var writer = WebSocketWriter(role: .server, deflate: takeover, compressionThreshold: 0)
        var out: [UInt8] = []
        hello.withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("c1 07 f2 48 cd c9 c9 07 00"))
        out = []
        hello.withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("c1 05 f2 00 11 00 00"))          // context takeover
        // Without context takeover every message is compressed from scratch: identical output.
        // ("Hello" itself compresses to 7 bytes, more than its 5, so that writer sends it plain.)
        var fresh = WebSocketWriter(role: .server, deflate: noTakeover, compressionThreshold: 0)
        out = []
        hello.withUnsafeBytes { fresh.writeMessage(.text, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("81 05 48 65 6c 6c 6f"))
        let repeated = Array(String(repeating: "Hello", count: 20).utf8)
        var first: [UInt8] = [], second: [UInt8] = []
        repeated.withUnsafeBytes { fresh.writeMessage(.text, payload: $0, into: &first) }
        repeated.withUnsafeBytes { fresh.writeMessage(.text, payload: $0, into: &second) }
        XCTAssertEqual(first, second)
        XCTAssertEqual(first[0], 0xC1)
        XCTAssertLessThan(first.count, 30)
    }

    func testWriterThresholdAndControlFrames() {
        var writer = WebSocketWriter(role: .server, deflate: takeover)     // threshold 256
        var out: [UInt8] = []
        hello.withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("81 05 48 65 6c 6c 6f"))
        XCTAssertFalse(writer.holdsDeflater)                             // lazily allocated
        out = []
        hello.withUnsafeBytes { writer.writeControl(.ping, payload: $0, into: &out) }
        XCTAssertEqual(out, bytes("89 05 48 65 6c 6c 6f"))
        out = []
        writer.writeClose(.goingAway, reason: "bye", into: &out)
        XCTAssertEqual(out, bytes("88 05 03 e9 62 79 65"))
    }

    func testRoundTripBothRolesAllParameterCombinations() {
        var rng = SplitMix64(seed: 7)
        let json = Array(#"{"device":"sensor-17","temperature":21.5,"status":"ok","tags":["a","b","c"]}"#.utf8)
        let messages: [(WebSocketOpcode, [UInt8])] = [
            (.text, json), (.text, Array(repeating: json, count: 40).flatMap { $0 }), (.binary, (0..<3000).map { _ in UInt8.random(in: 0...255, using: &rng) }),
            (.text, []), (.text, Array("é€𝄞".utf8)), (.binary, [UInt8](repeating: 0, count: 200_000)), (.text, json),
        ]
        for sNCT in [false, true] {
            for cNCT in [false, true] {
                for bits in [8, 9, 12, 15] {
                    let params = PerMessageDeflate.Parameters(serverNoContextTakeover: sNCT, clientNoContextTakeover: cNCT,
                                                              serverMaxWindowBits: bits, clientMaxWindowBits: bits)
                    for (sender, receiver) in [(WebSocketRole.server, WebSocketRole.client), (.client, .server)] {
                        var writer = WebSocketWriter(role: sender, deflate: params, compressionThreshold: 0)
                        var wire: [UInt8] = []
                        for (opcode, payload) in messages {
                            payload.withUnsafeBytes { writer.writeMessage(opcode, payload: $0, into: &wire) }
                        }
                        let expected = messages.map { $0.0 == .text ? Recorded.text($0.1) : Recorded.binary($0.1) }
                        var reader = WebSocketReader(role: receiver, deflate: params)
                        let got = feed(&reader, wire, pieces: randomPieces(wire.count, using: &rng, maxPiece: 5000))
                        XCTAssertEqual(got, expected, "\(params) \(sender)")
                    }
                }
            }
        }
    }

    func testEightBitWindowOutputStaysWithinTwoHundredFiftySixBytes() throws {
        // server_max_window_bits=8 is honoured by deflating with 9 bits (zlib refuses 8 for raw
        // deflate): a 9-bit deflater never reaches back more than 250 bytes. Python's zlib would
        // reject distances > 256 with wbits=-8 too; here, decode with an inflater that is
        // exactly as small as the agreement allows and repetitive data that tempts long matches.
        let params = PerMessageDeflate.Parameters(serverMaxWindowBits: 8)
        var writer = WebSocketWriter(role: .server, deflate: params, compressionThreshold: 0)
        var pattern: [UInt8] = []
        var rng = SplitMix64(seed: 3)
        let block = (0..<300).map { _ in UInt8.random(in: 97...122, using: &rng) }
        for _ in 0..<20 { pattern += block }                         // period 300 > 256: matches must not use it
        var wire: [UInt8] = []
        pattern.withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &wire) }
        XCTAssertEqual(parse(wire, role: .client, deflate: params), [.text(pattern)])
        let payloadStart = wire[1] & 0x7F == 126 ? 4 : 2
        let distances = try distancesInRawDeflate(Array(wire[payloadStart...]) + [0, 0, 0xFF, 0xFF])
        XCTAssertLessThanOrEqual(distances.max() ?? 0, 256)
        // The same data with a 15-bit window does reach back 300 bytes: the walker sees matches.
        var wide = WebSocketWriter(role: .server, deflate: PerMessageDeflate.Parameters(), compressionThreshold: 0)
        var wideWire: [UInt8] = []
        pattern.withUnsafeBytes { wide.writeMessage(.text, payload: $0, into: &wideWire) }
        let wideStart = wideWire[1] & 0x7F == 126 ? 4 : 2
        XCTAssertEqual(try distancesInRawDeflate(Array(wideWire[wideStart...]) + [0, 0, 0xFF, 0xFF]).max(), 300)
    }

    func testDeflateBombStopsAtTheLimit() {
        let limits = WebSocketLimits(maxFrameBytes: 1 << 20, maxMessageBytes: 1 << 20)
        var writer = WebSocketWriter(role: .client, deflate: takeover, compressionThreshold: 0)
        let bomb = [UInt8](repeating: 0, count: 16 << 20)                // 16 MiB of zeros → ~16 KiB
        var wire: [UInt8] = []
        bomb.withUnsafeBytes { writer.writeMessage(.binary, payload: $0, into: &wire) }
        XCTAssertLessThan(wire.count, 1 << 20)
        var reader = WebSocketReader(role: .server, limits: limits, deflate: takeover)
        XCTAssertEqual(feed(&reader, wire), [.failed(1009)])
        XCTAssertEqual(reader.bufferedCapacity, 0)                      // released on error
        // Exactly at the limit is fine.
        let atLimit = [UInt8](repeating: 0, count: 1 << 20)
        wire = []
        var w2 = WebSocketWriter(role: .client, deflate: takeover, compressionThreshold: 0)
        atLimit.withUnsafeBytes { w2.writeMessage(.binary, payload: $0, into: &wire) }
        XCTAssertEqual(parse(wire, limits: limits, deflate: takeover), [.binary(atLimit)])
    }

    func testInvalidUTF8BeforeTheLimitWinsOverTheLimit() {
        // Found by fuzz/ws-inflate: in one read, the inflated output crossed the limit in the
        // same zlib call that produced an invalid byte well before the limit; split reads saw
        // the invalid byte first. The verdict must not depend on the split: 1007.
        let limits = WebSocketLimits(maxFrameBytes: 1 << 20, maxMessageBytes: 50)
        var writer = WebSocketWriter(role: .client, deflate: takeover, compressionThreshold: 0)
        var wire: [UInt8] = []
        ([0x61, 0xFF] + [UInt8](repeating: 0x61, count: 200)).withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &wire) }
        assertSplitInvariant(wire, expected: [.failed(1007)], limits: limits, deflate: takeover)
        // Valid text over the limit: 1009.
        wire = []
        var fresh = WebSocketWriter(role: .client, deflate: takeover, compressionThreshold: 0)
        [UInt8](repeating: 0x61, count: 200).withUnsafeBytes { fresh.writeMessage(.text, payload: $0, into: &wire) }
        XCTAssertEqual(parse(wire, limits: limits, deflate: takeover), [.failed(1009)])
    }

    // MARK: Memory

    func testNoContextTakeoverHoldsNoZStreamBetweenMessages() {
        var reader = WebSocketReader(role: .server, deflate: noTakeover)
        var writer = WebSocketWriter(role: .server, deflate: noTakeover, compressionThreshold: 0)
        var client = WebSocketWriter(role: .client, deflate: noTakeover, compressionThreshold: 0)
        XCTAssertFalse(reader.holdsInflater)
        XCTAssertFalse(writer.holdsDeflater)
        for i in 0..<3 {
            var wire: [UInt8] = []
            let payload = Array(String(repeating: "message \(i) ", count: 100).utf8)
            payload.withUnsafeBytes { client.writeMessage(.text, payload: $0, into: &wire) }
            XCTAssertEqual(wire[0] & 0x40, 0x40, "compressed")
            // Deliver all but the last byte: the inflater exists mid-message ...
            XCTAssertEqual(feed(&reader, Array(wire.dropLast())), [])
            XCTAssertTrue(reader.holdsInflater)
            // ... and is gone once the message is delivered.
            XCTAssertEqual(feed(&reader, [wire.last!]), [.text(payload)])
            XCTAssertFalse(reader.holdsInflater)
            var out: [UInt8] = []
            payload.withUnsafeBytes { writer.writeMessage(.text, payload: $0, into: &out) }
            XCTAssertFalse(writer.holdsDeflater)
            XCTAssertFalse(client.holdsDeflater)
        }
        XCTAssertLessThanOrEqual(reader.bufferedCapacity, WebSocketReader.retainedBufferCapacity)
        // With context takeover both keep their state (that is the point of it).
        var keepingReader = WebSocketReader(role: .server, deflate: takeover)
        var keepingClient = WebSocketWriter(role: .client, deflate: takeover, compressionThreshold: 0)
        var wire: [UInt8] = []
        hello.withUnsafeBytes { keepingClient.writeMessage(.text, payload: $0, into: &wire) }
        XCTAssertEqual(feed(&keepingReader, wire), [.text(hello)])
        XCTAssertTrue(keepingReader.holdsInflater)
        XCTAssertTrue(keepingClient.holdsDeflater)
    }

    func testIncompressibleMessageFallsBackToPlainWithoutContextTakeover() {
        var rng = SplitMix64(seed: 11)
        let noise = (0..<4000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var writer = WebSocketWriter(role: .server, deflate: noTakeover, compressionThreshold: 0)
        var out: [UInt8] = []
        noise.withUnsafeBytes { writer.writeMessage(.binary, payload: $0, into: &out) }
        XCTAssertEqual(out[0], 0x82)                                    // RSV1 clear: sent as is
        XCTAssertEqual(parse(out, role: .client, deflate: noTakeover), [.binary(noise)])
    }

    func testEncodeShared() {
        let payload = Array(String(repeating: "broadcast ", count: 100).utf8)
        let shared = payload.withUnsafeBytes { WebSocketWriter.encodeShared(.text, payload: $0, compress: noTakeover) }
        XCTAssertEqual(shared[0], 0xC1)
        // Decodable by recipients whatever they received before, with or without their own
        // context takeover for the client direction.
        for params in [noTakeover, PerMessageDeflate.Parameters(serverNoContextTakeover: true)] {
            var reader = WebSocketReader(role: .client, deflate: params)
            var ownWriter = WebSocketWriter(role: .server, deflate: params, compressionThreshold: 0)
            var wire: [UInt8] = []
            hello.withUnsafeBytes { ownWriter.writeMessage(.text, payload: $0, into: &wire) }
            wire += shared
            hello.withUnsafeBytes { ownWriter.writeMessage(.text, payload: $0, into: &wire) }
            wire += shared
            XCTAssertEqual(feed(&reader, wire), [.text(hello), .text(payload), .text(hello), .text(payload)])
        }
        // Context takeover on the server side: never compressed (it would desynchronise windows).
        let plain = payload.withUnsafeBytes { WebSocketWriter.encodeShared(.text, payload: $0, compress: takeover) }
        XCTAssertEqual(plain[0], 0x81)
        XCTAssertEqual(Array(plain.suffix(payload.count)), payload)
        let none = payload.withUnsafeBytes { WebSocketWriter.encodeShared(.binary, payload: $0, compress: nil) }
        XCTAssertEqual(none[0], 0x82)
    }

    // MARK: Negotiation

    func negotiate(_ offers: [String], _ policy: PerMessageDeflate.Policy = PerMessageDeflate.Policy()) -> (PerMessageDeflate.Parameters, String)? {
        PerMessageDeflate.negotiate(offers: offers, policy: policy).map { ($0.0, $0.responseHeader) }
    }

    func testNegotiationAcceptsOffersAsTheyAre() {
        XCTAssertEqual(negotiate(["permessage-deflate"])?.1, "permessage-deflate")
        XCTAssertEqual(negotiate(["permessage-deflate; client_max_window_bits"])?.1, "permessage-deflate")
        let full = negotiate(["permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"])
        XCTAssertEqual(full?.0, PerMessageDeflate.Parameters(serverNoContextTakeover: true, clientNoContextTakeover: true,
                                                             serverMaxWindowBits: 10, clientMaxWindowBits: 12))
        XCTAssertEqual(full?.1, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12")
        // 8 bits is accepted and answered as 8 (deflated with 9 internally).
        XCTAssertEqual(negotiate(["permessage-deflate; server_max_window_bits=8"])?.1, "permessage-deflate; server_max_window_bits=8")
        XCTAssertEqual(negotiate(["permessage-deflate; client_max_window_bits=8"])?.0.clientMaxWindowBits, 8)
        // Quoted values (RFC 6455 §9.1) and case-insensitive names.
        XCTAssertEqual(negotiate(["Permessage-Deflate; server_max_window_bits=\"10\""])?.0.serverMaxWindowBits, 10)
    }

    func testNegotiationDeclinesMalformedOffersAndPicksTheFirstGoodOne() {
        let bad = [
            "permessage-deflate; foo", "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16", "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=0", "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_max_window_bits=1a", "permessage-deflate; =",
            "permessage-deflate; client_max_window_bits=\"10", "x-webkit-deflate-frame",
        ]
        for offer in bad { XCTAssertNil(negotiate([offer]), offer) }
        // Declining one offer moves on to the next, in the client's order.
        let picked = negotiate(["permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits=9",
                                "permessage-deflate"])
        XCTAssertEqual(picked?.1, "permessage-deflate; client_max_window_bits=9")
        XCTAssertNil(negotiate([]))
        XCTAssertNil(negotiate(["", " , "]))
    }

    func testServerPolicy() {
        var policy = PerMessageDeflate.Policy(serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12,
                                              clientMaxWindowBits: 10)
        XCTAssertEqual(negotiate(["permessage-deflate"], policy)?.1,
                       "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12")
        XCTAssertEqual(negotiate(["permessage-deflate; client_max_window_bits"], policy)?.0.clientMaxWindowBits, 10)
        XCTAssertEqual(negotiate(["permessage-deflate; server_max_window_bits=9; client_max_window_bits=14"], policy)?.1,
                       "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10")
        policy = PerMessageDeflate.Policy()
        XCTAssertEqual(negotiate(["permessage-deflate; client_max_window_bits=15"], policy)?.1, "permessage-deflate; client_max_window_bits=15")
    }

    func testClientOfferAndResponseValidation() {
        let offer = PerMessageDeflate.Parameters(serverNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 13)
        XCTAssertEqual(PerMessageDeflate.clientOffer(offer),
                       "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=13")
        XCTAssertEqual(PerMessageDeflate.clientOffer(), "permessage-deflate; client_max_window_bits")
        // Our own server's answer to our own client's offer validates and agrees.
        let (serverSide, header) = PerMessageDeflate.negotiate(offers: [PerMessageDeflate.clientOffer(offer)], policy: .init())!
        XCTAssertEqual(try PerMessageDeflate.validateResponse([header], offered: offer).get(), serverSide)
        XCTAssertEqual(try PerMessageDeflate.validateResponse([], offered: offer).get(), nil)
        for bad in ["permessage-deflate; server_max_window_bits=13; server_no_context_takeover",   // above our 12
                    "permessage-deflate; server_max_window_bits=12",                               // dropped NCT
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits",
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; foo",
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=12, permessage-deflate",
                    "x-other"] {
            XCTAssertThrowsError(try PerMessageDeflate.validateResponse([bad], offered: offer).get(), bad)
        }
    }

    // MARK: Helpers

    /// Walks a raw DEFLATE stream and returns every match distance (RFC 1951), to check what a
    /// deflater emitted without trusting zlib's own inflater.
    func distancesInRawDeflate(_ data: [UInt8]) throws -> [Int] {
        struct Bits {
            let data: [UInt8]
            var pos = 0
            mutating func bit() throws -> Int {
                guard pos / 8 < data.count else { throw NSError(domain: "eof", code: 0) }
                let b = Int(data[pos / 8] >> (pos % 8)) & 1
                pos += 1
                return b
            }
            mutating func bits(_ n: Int) throws -> Int { var v = 0; for i in 0..<n { v |= try bit() << i }; return v }
        }
        let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        let distBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                        4097, 6145, 8193, 12289, 16385, 24577]
        let distExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
        /// Canonical Huffman decoder from code lengths.
        struct Huffman {
            var table: [Int: [Int: Int]] = [:]   // length → code → symbol
            init(_ lengths: [Int]) {
                var blCount = [Int](repeating: 0, count: 16)
                for l in lengths where l > 0 { blCount[l] += 1 }
                var next = [Int](repeating: 0, count: 16)
                var code = 0
                for bits in 1..<16 { code = (code + blCount[bits - 1]) << 1; next[bits] = code }
                for (sym, l) in lengths.enumerated() where l > 0 { table[l, default: [:]][next[l]] = sym; next[l] += 1 }
            }
            func decode(_ b: inout Bits) throws -> Int {
                var code = 0
                for len in 1...15 {
                    code = code << 1 | (try b.bit())
                    if let s = table[len]?[code] { return s }
                }
                throw NSError(domain: "bad code", code: 0)
            }
        }
        var b = Bits(data: data)
        var distances: [Int] = []
        while true {
            let final = try b.bit()
            let type = try b.bits(2)
            if type == 0 {
                if b.pos % 8 != 0 { b.pos += 8 - b.pos % 8 }
                let len = try b.bits(16)
                _ = try b.bits(16)
                b.pos += len * 8
            } else {
                var lit: Huffman, dist: Huffman
                if type == 1 {
                    lit = Huffman((0..<288).map { $0 < 144 ? 8 : ($0 < 256 ? 9 : ($0 < 280 ? 7 : 8)) })
                    dist = Huffman([Int](repeating: 5, count: 30))
                } else {
                    let hlit = try b.bits(5) + 257, hdist = try b.bits(5) + 1, hclen = try b.bits(4) + 4
                    let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
                    var clen = [Int](repeating: 0, count: 19)
                    for i in 0..<hclen { clen[order[i]] = try b.bits(3) }
                    let ch = Huffman(clen)
                    var lengths: [Int] = []
                    while lengths.count < hlit + hdist {
                        let s = try ch.decode(&b)
                        switch s {
                        case 0..<16: lengths.append(s)
                        case 16: let r = try b.bits(2) + 3; lengths += Array(repeating: lengths.last!, count: r)
                        case 17: lengths += Array(repeating: 0, count: try b.bits(3) + 3)
                        default: lengths += Array(repeating: 0, count: try b.bits(7) + 11)
                        }
                    }
                    lit = Huffman(Array(lengths[..<hlit]))
                    dist = Huffman(Array(lengths[hlit...]))
                }
                while true {
                    let s = try lit.decode(&b)
                    if s < 256 { continue }
                    if s == 256 { break }
                    _ = lengthBase[s - 257] + (try b.bits(lengthExtra[s - 257]))
                    let d = try dist.decode(&b)
                    distances.append(distBase[d] + (try b.bits(distExtra[d])))
                }
            }
            if final == 1 || b.pos / 8 >= data.count { break }
        }
        return distances
    }
}
