// Chunked transfer coding (RFC 9112 §7.1): decoding, extensions, trailers, framing checks.

import XCTest
@testable import HubHTTP

final class ChunkedBodyTests: XCTestCase {
    private let head = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

    private func decode(_ body: String, limits: HTTPParserLimits = .init(),
                        file: StaticString = #filePath, line: UInt = #line) -> [UInt8]? {
        parseOne(b(head + body), limits: limits, file: file, line: line)?.body
    }

    func testSingleChunk() {
        XCTAssertEqual(decode("5\r\nhello\r\n0\r\n\r\n"), b("hello"))
    }

    func testEmptyChunkedBody() {
        XCTAssertEqual(decode("0\r\n\r\n"), [])
        XCTAssertEqual(decode("000\r\n\r\n"), [])
    }

    func testManyChunksConcatenate() {
        var body = ""
        var expected = ""
        for i in 1...40 {
            let piece = String(repeating: Character(UnicodeScalar(UInt8(65 + i % 26))), count: i)
            body += String(i, radix: 16) + "\r\n" + piece + "\r\n"
            expected += piece
        }
        XCTAssertEqual(decode(body + "0\r\n\r\n"), b(expected))
    }

    func testHexDigitsAnyCase() {
        let data = String(repeating: "x", count: 0xAB)
        XCTAssertEqual(decode("aB\r\n\(data)\r\n0\r\n\r\n")?.count, 0xAB)
        XCTAssertEqual(decode("Ab\r\n\(data)\r\n0\r\n\r\n")?.count, 0xAB)
    }

    func testLeadingZerosAreNotOverflow() {
        XCTAssertEqual(decode("00000000000000000000000000000003\r\nabc\r\n0\r\n\r\n"), b("abc"))
    }

    func testLargestNonOverflowingSizeIsTooLargeNotInvalid() {
        let error = parseError(b(head + "FFFFFFFFFFFFFFFF\r\n"))
        XCTAssertEqual(error?.code, "payload_too_large")
        let overflow = parseError(b(head + "10000000000000000\r\n"))
        XCTAssertEqual(overflow?.code, "invalid_chunk_size")
    }

    func testExtensionsAreSkipped() {
        XCTAssertEqual(decode("3;foo=bar;baz\r\nabc\r\n2 ;q=\"a b\"\r\nde\r\n0;last\r\n\r\n"), b("abcde"))
        XCTAssertEqual(decode("3\t;x\r\nabc\r\n0\r\n\r\n"), b("abc"))
    }

    func testTrailersAreValidatedAndIgnored() throws {
        let r = try XCTUnwrap(parseOne(b(head + "2\r\nok\r\n0\r\nX-Checksum: 1234\r\nX-Other: v\r\n\r\n")))
        XCTAssertEqual(r.body, b("ok"))
        XCTAssertNil(r.headers["x-checksum"], "trailers must not be merged into headers")
        XCTAssertEqual(r.headers.count, 2)
    }

    func testChunkedThenPipelinedRequest() {
        let outcome = feedWhole(b(head + "1\r\na\r\n0\r\nT: v\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(outcome.requests.map(\.path), ["/c", "/next"])
        XCTAssertEqual(outcome.requests.first?.body, b("a"))
    }

    func testChunkDataArrivingInPieces() {
        var parser = HTTPParser()
        parser.append(b(head + "A\r\n01234"))
        XCTAssertEqual(parser.next(), .needMoreData)
        // Partial chunk data has been moved into the body, so it is no longer buffered.
        XCTAssertEqual(parser.bufferedByteCount, 0)
        parser.append(b("56789"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\r"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\n0\r\n"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\r\n"))
        guard case .request(let r) = parser.next() else { return XCTFail("no request") }
        XCTAssertEqual(r.body, b("0123456789"))
    }

    func testManyTinyChunksStayBoundedInMemory() {
        // 1-byte chunks with long extensions: the raw framing is ~100× the body, but it is
        // consumed as it goes, so the buffer never holds more than one line.
        var parser = HTTPParser(limits: HTTPParserLimits(maxBodyBytes: 1000))
        parser.append(b(head))
        XCTAssertEqual(parser.next(), .needMoreData)
        let chunk = b("1;" + String(repeating: "e", count: 100) + "\r\nz\r\n")
        for _ in 0..<1000 {
            parser.append(chunk)
            XCTAssertEqual(parser.next(), .needMoreData)
            XCTAssertLessThanOrEqual(parser.bufferedByteCount, chunk.count)
        }
        parser.append(b("1\r\nz\r\n"))
        XCTAssertEqual(parser.next(), .error(.payloadTooLarge(1000)))
    }

    func testChunkedBodySplitEverywhere() {
        let bytes = b(head + "4;x=y\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n")
        let whole = feedWhole(bytes)
        XCTAssertEqual(whole.requests.first?.body, b("Wikipedia in\r\n\r\nchunks."))
        for cut in 0...bytes.count {
            XCTAssertEqual(feed(split(bytes, at: [cut])), whole, "cut \(cut)")
        }
    }
}
