// Size limits: enforced exactly at the boundary, and before the offending input is complete.

import XCTest
@testable import HubHTTP

final class ParserLimitTests: XCTestCase {
    // MARK: Request line (414)

    func testRequestLineAtLimitIsAccepted() {
        let limits = HTTPParserLimits(maxRequestLineBytes: 64)
        let prefix = "GET /", suffix = " HTTP/1.1"
        let path = String(repeating: "a", count: 64 - prefix.count - suffix.count)
        let line = prefix + path + suffix
        XCTAssertEqual(line.utf8.count, 64)
        XCTAssertNotNil(parseOne(b(line + "\r\nHost: h\r\n\r\n"), limits: limits))
    }

    func testRequestLineOneOverLimitIs414() {
        let limits = HTTPParserLimits(maxRequestLineBytes: 64)
        let line = "GET /" + String(repeating: "a", count: 64 - 14 + 1) + " HTTP/1.1"
        XCTAssertEqual(line.utf8.count, 65)
        let error = parseError(b(line + "\r\nHost: h\r\n\r\n"), limits: limits)
        XCTAssertEqual(error?.status, 414)
        XCTAssertEqual(error?.code, "uri_too_long")
    }

    func testLongRequestLineIs414BeforeAnyCRLF() {
        // Default limits: 8192 bytes of target and no line break yet.
        var parser = HTTPParser()
        parser.append(b("GET /" + String(repeating: "x", count: 4000)))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b(String(repeating: "x", count: 4200)))
        guard case .error(let error) = parser.next() else { return XCTFail("no error without CRLF") }
        XCTAssertEqual(error.status, 414)
        XCTAssertEqual(error.code, "uri_too_long")
    }

    func testLongRequestLineIs414ByteByByte() {
        let limits = HTTPParserLimits(maxRequestLineBytes: 100)
        let bytes = b("GET /" + String(repeating: "y", count: 200))
        let outcome = feedBytewise(bytes, limits: limits)
        XCTAssertEqual(outcome.error?.code, "uri_too_long")
        XCTAssertEqual(outcome, feedWhole(bytes, limits: limits))
    }

    // MARK: Header section (431)

    func testHeaderSectionAtLimitIsAccepted() {
        let start = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ", end = "\r\n\r\n"
        let limit = 200
        let padded = start + String(repeating: "p", count: limit - start.utf8.count - end.utf8.count) + end
        XCTAssertEqual(padded.utf8.count, limit)
        XCTAssertNotNil(parseOne(b(padded), limits: HTTPParserLimits(maxHeaderBytes: limit)))
        let error = parseError(b(padded), limits: HTTPParserLimits(maxHeaderBytes: limit - 1))
        XCTAssertEqual(error?.status, 431)
        XCTAssertEqual(error?.code, "headers_too_large")
    }

    func testLargeHeadersAre431BeforeBlankLine() {
        var parser = HTTPParser()
        parser.append(b("GET / HTTP/1.1\r\nHost: h\r\n"))
        for i in 0..<15 {
            parser.append(b("X-Filler-\(i): " + String(repeating: "z", count: 1000) + "\r\n"))
        }
        XCTAssertEqual(parser.next(), .needMoreData)   // ~15 KiB: still within 16 KiB
        parser.append(b("X-Last: " + String(repeating: "z", count: 2000)))   // no CRLF, no blank line
        guard case .error(let error) = parser.next() else { return XCTFail("no error") }
        XCTAssertEqual(error.status, 431)
        XCTAssertEqual(error.code, "headers_too_large")
    }

    func testSingleHugeHeaderLineIs431WithoutCRLF() {
        let limits = HTTPParserLimits(maxHeaderBytes: 1024)
        let bytes = b("GET / HTTP/1.1\r\nCookie: " + String(repeating: "c", count: 2000))
        let outcome = feedBytewise(bytes, limits: limits)
        XCTAssertEqual(outcome.error?.code, "headers_too_large")
        XCTAssertEqual(outcome, feedWhole(bytes, limits: limits))
    }

    func testRequestLineBoundedByHeaderBudgetIs431() {
        // With a head budget smaller than the line budget, the head budget speaks.
        let limits = HTTPParserLimits(maxRequestLineBytes: 8192, maxHeaderBytes: 64)
        let error = parseError(b("GET /" + String(repeating: "a", count: 100)), limits: limits)
        XCTAssertEqual(error?.code, "headers_too_large")
    }

    func testTooManyHeaders() {
        let limits = HTTPParserLimits(maxHeaderCount: 10)
        var head = "GET / HTTP/1.1\r\nHost: h\r\n"
        for i in 0..<9 { head += "X-\(i): v\r\n" }
        XCTAssertNotNil(parseOne(b(head + "\r\n"), limits: limits))      // exactly 10 fields
        let error = parseError(b(head + "X-10: v\r\n\r\n"), limits: limits)
        XCTAssertEqual(error?.status, 431)
        XCTAssertEqual(error?.code, "too_many_headers")
    }

    func testTooManyHeadersDefaultLimitDetectedBeforeBlankLine() {
        var head = "GET / HTTP/1.1\r\nHost: h\r\n"
        for i in 0..<100 { head += "a\(i):\r\n" }
        var parser = HTTPParser()
        parser.append(b(head))
        XCTAssertEqual(parser.next(), .error(.tooManyHeaders(100)))
    }

    func testTrailerSectionIsBoundedLikeHeaders() {
        let limits = HTTPParserLimits(maxHeaderBytes: 256, maxHeaderCount: 5)
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        var many = head
        for i in 0..<6 { many += "T\(i): v\r\n" }
        XCTAssertEqual(parseError(b(many + "\r\n"), limits: limits)?.code, "too_many_headers")
        let big = head + "T: " + String(repeating: "v", count: 300)
        XCTAssertEqual(parseError(b(big), limits: limits)?.code, "headers_too_large")
    }

    // MARK: Body (413)

    func testContentLengthAtLimitAccepted() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let r = parseOne(b("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"), limits: limits)
        XCTAssertEqual(r?.body.count, 10)
    }

    func testContentLengthOverLimitIs413BeforeBody() {
        var parser = HTTPParser(limits: HTTPParserLimits(maxBodyBytes: 10))
        parser.append(b("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"))
        XCTAssertEqual(parser.next(), .error(.payloadTooLarge(10)))
    }

    func testChunkedTotalOverLimitIs413() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let ok = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"
        XCTAssertEqual(parseOne(b(ok), limits: limits)?.body, b("0123456789"))
        let over = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n"
        XCTAssertEqual(parseError(b(over), limits: limits)?.code, "payload_too_large")
    }

    func testChunkSizeLineLengthIsBounded() {
        let limits = HTTPParserLimits(maxChunkLineBytes: 32)
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        let ok = head + "1;" + String(repeating: "e", count: 30) + "\r\nx\r\n0\r\n\r\n"
        XCTAssertNotNil(parseOne(b(ok), limits: limits))
        let long = head + "1;" + String(repeating: "e", count: 100)   // no CRLF yet
        let outcome = feedBytewise(b(long), limits: limits)
        XCTAssertEqual(outcome.error?.code, "invalid_chunk_extension")
    }

    func testLimitsAreClamped() {
        let limits = HTTPParserLimits(maxRequestLineBytes: -5, maxHeaderBytes: 0, maxHeaderCount: -1, maxBodyBytes: -1, maxChunkLineBytes: 0)
        XCTAssertEqual(limits.maxRequestLineBytes, 1)
        XCTAssertEqual(limits.maxHeaderCount, 0)
        XCTAssertEqual(limits.maxBodyBytes, 0)
        // A parser with absurd limits rejects instead of crashing.
        XCTAssertNotNil(feedWhole(Samples.pipelined, limits: limits).error)
    }
}
