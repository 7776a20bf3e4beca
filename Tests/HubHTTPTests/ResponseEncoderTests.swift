// Response serialization (exact bytes) and the cached IMF-fixdate.

import Foundation
import XCTest
@testable import HubHTTP

final class ResponseEncoderTests: XCTestCase {
    private let date = HTTPDate(unixSeconds: 784_111_777)
    private let dateLine = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

    private func encode(_ status: Int, _ headers: HTTPHeaders = HTTPHeaders(), body: String = "",
                        keepAlive: Bool = true, headOnly: Bool = false) -> String {
        var out: [UInt8] = []
        HTTPResponseEncoder.encode(HTTPResponseHead(status: status, headers: headers), body: b(body),
                                   keepAlive: keepAlive, headOnly: headOnly, date: date, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testKeepAliveResponse() {
        XCTAssertEqual(encode(200, ["Content-Type": "text/plain"], body: "hello"),
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + dateLine + "Content-Length: 5\r\n\r\nhello")
    }

    func testCloseResponse() {
        XCTAssertEqual(encode(404, ["Content-Type": "application/problem+json"], body: "{}", keepAlive: false),
                       "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n" + dateLine
                       + "Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    }

    func testHeadResponseHasLengthButNoBody() {
        XCTAssertEqual(encode(200, body: "hello", headOnly: true),
                       "HTTP/1.1 200 OK\r\n" + dateLine + "Content-Length: 5\r\n\r\n")
    }

    func testNoContentHasNoLengthAndNoBody() {
        XCTAssertEqual(encode(204), "HTTP/1.1 204 No Content\r\n" + dateLine + "\r\n")
        XCTAssertEqual(encode(204, body: "ignored"), "HTTP/1.1 204 No Content\r\n" + dateLine + "\r\n")
        XCTAssertEqual(encode(304, ["ETag": "\"v1\""], body: "x"),
                       "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n" + dateLine + "\r\n")
    }

    func testSwitchingProtocols() {
        let headers: HTTPHeaders = ["Upgrade": "websocket", "Connection": "Upgrade",
                                    "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
        XCTAssertEqual(encode(101, headers),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" + dateLine + "\r\n")
    }

    func testTransferEncodingSuppressesContentLength() {
        XCTAssertEqual(encode(200, ["Transfer-Encoding": "chunked"]),
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + dateLine + "\r\n")
    }

    func testCallerHeadersAreNotDuplicated() {
        let headers: HTTPHeaders = ["date": "Mon, 01 Jan 2024 00:00:00 GMT", "content-length": "3", "Connection": "close"]
        XCTAssertEqual(encode(200, headers, body: "abc", keepAlive: false),
                       "HTTP/1.1 200 OK\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\ncontent-length: 3\r\nConnection: close\r\n\r\nabc")
    }

    func testHeaderInjectionIsNeutralised() {
        let headers: HTTPHeaders = ["Location": "/x\r\nSet-Cookie: evil=1", "Bad Name\r\n": "v\u{0}"]
        XCTAssertEqual(encode(302, headers),
                       "HTTP/1.1 302 Found\r\nLocation: /x  Set-Cookie: evil=1\r\nBad-Name--: v \r\n" + dateLine
                       + "Content-Length: 0\r\n\r\n")
    }

    func testAppendsToExistingOutput() {
        var out = b("previous")
        HTTPResponseEncoder.encode(HTTPResponseHead(status: 200), body: [], keepAlive: true, headOnly: false, date: date, into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "previousHTTP/1.1 200 OK\r\n" + dateLine + "Content-Length: 0\r\n\r\n")
    }

    func testRawBufferBody() {
        var out: [UInt8] = []
        let payload: [UInt8] = [0, 1, 2, 255]
        payload.withUnsafeBytes {
            HTTPResponseEncoder.encode(HTTPResponseHead(status: 201), body: $0, keepAlive: true, headOnly: false, date: date, into: &out)
        }
        XCTAssertEqual(Array(out.suffix(4)), payload)
        XCTAssertTrue(String(decoding: out, as: UTF8.self).hasPrefix("HTTP/1.1 201 Created\r\n"))
    }

    func testReasonPhrases() {
        XCTAssertEqual(HTTPResponseEncoder.reasonPhrase(200), "OK")
        XCTAssertEqual(HTTPResponseEncoder.reasonPhrase(413), "Content Too Large")
        XCTAssertEqual(HTTPResponseEncoder.reasonPhrase(431), "Request Header Fields Too Large")
        XCTAssertEqual(HTTPResponseEncoder.reasonPhrase(505), "HTTP Version Not Supported")
        XCTAssertEqual(HTTPResponseEncoder.reasonPhrase(299), "Unknown")
        for (_, status) in HTTPParseError.catalogue {
            XCTAssertNotEqual(HTTPResponseEncoder.reasonPhrase(status), "Unknown", "\(status)")
        }
        XCTAssertEqual(encode(299), "HTTP/1.1 299 Unknown\r\n" + dateLine + "Content-Length: 0\r\n\r\n")
    }

    func testDecimalDigits() {
        for n in [0, 1, 9, 10, 99, 100, 12345, 1 << 20, Int.max] {
            var out: [UInt8] = []
            HTTPResponseEncoder.appendDecimal(n, into: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), String(n))
        }
    }

    func testEncodedResponseRoundTripsThroughAStrictReader() {
        // The bytes must be a well-formed head: CRLF lines, "name: value", blank line, body.
        let text = encode(200, ["X-A": "1", "X-B": "two words"], body: "payload", keepAlive: false)
        let parts = text.components(separatedBy: "\r\n\r\n")
        XCTAssertEqual(parts.count, 2)
        XCTAssertEqual(parts[1], "payload")
        let lines = parts[0].components(separatedBy: "\r\n")
        XCTAssertEqual(lines.first, "HTTP/1.1 200 OK")
        for line in lines.dropFirst() { XCTAssertNotNil(line.range(of: ": "), line) }
    }

    // MARK: Extra field and prepared heads

    func testExtraFieldIsWrittenAfterHeadFields() {
        var out: [UInt8] = []
        b("ok").withUnsafeBytes { body in
            HTTPResponseEncoder.encode(HTTPResponseHead(status: 200, headers: ["Content-Type": "text/plain"]), body: body,
                                       keepAlive: true, headOnly: false, date: date,
                                       extra: HTTPHeaders.Field(name: "X-Request-ID", value: "r\r\n1"), into: &out)
        }
        XCTAssertEqual(String(decoding: out, as: UTF8.self),
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-ID: r  1\r\n" + dateLine + "Content-Length: 2\r\n\r\nok")
    }

    func testPreparedHeadWritesTheSameBytesAsEncode() {
        let heads: [HTTPResponseHead] = [
            HTTPResponseHead(status: 200, headers: ["Content-Type": "application/json", "Cache-Control": "no-store"]),
            HTTPResponseHead(status: 204),
            HTTPResponseHead(status: 304, headers: ["ETag": "\"x\""]),
            HTTPResponseHead(status: 404, headers: ["Content-Type": "application/problem+json", "Bad\r\nName": "v\u{0}"]),
            HTTPResponseHead(status: 101, headers: ["Upgrade": "websocket"]),
        ]
        let extras: [HTTPHeaders.Field?] = [nil, HTTPHeaders.Field(name: "X-Request-ID", value: "abc")]
        for head in heads {
            guard let prepared = PreparedResponseHead(head) else { XCTFail("not preparable: \(head)"); continue }
            for body in [b(""), b("hello")] {
                for keepAlive in [true, false] {
                    for headOnly in [true, false] {
                        for extra in extras {
                            var general: [UInt8] = [], fast: [UInt8] = []
                            body.withUnsafeBytes { raw in
                                HTTPResponseEncoder.encode(head, body: raw, keepAlive: keepAlive, headOnly: headOnly,
                                                           date: date, extra: extra, into: &general)
                                HTTPResponseEncoder.encode(prepared: prepared, body: raw, keepAlive: keepAlive, headOnly: headOnly,
                                                           date: date, extra: extra, into: &fast)
                            }
                            XCTAssertEqual(String(decoding: fast, as: UTF8.self), String(decoding: general, as: UTF8.self),
                                           "\(head.status) keepAlive=\(keepAlive) headOnly=\(headOnly) body=\(body.count)")
                        }
                    }
                }
            }
        }
    }

    func testHeadsWithPerResponseFieldsAreNotPreparable() {
        for name in ["Date", "content-length", "Transfer-Encoding", "CONNECTION"] {
            XCTAssertNil(PreparedResponseHead(HTTPResponseHead(status: 200, headers: [name: "x"])), name)
        }
    }

    // MARK: HTTPDate

    func testHTTPDateKnownTimestamps() {
        XCTAssertEqual(HTTPDate(unixSeconds: 784_111_777).description, "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(HTTPDate(unixSeconds: 0).description, "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate(unixSeconds: 951_782_400).description, "Tue, 29 Feb 2000 00:00:00 GMT")
        XCTAssertEqual(HTTPDate(unixSeconds: 1_700_000_000).description, "Tue, 14 Nov 2023 22:13:20 GMT")
        XCTAssertEqual(HTTPDate(unixSeconds: 4_107_542_399).description, "Sun, 28 Feb 2100 23:59:59 GMT")   // 2100 is not a leap year
        XCTAssertEqual(HTTPDate(unixSeconds: 253_402_300_799).description, "Fri, 31 Dec 9999 23:59:59 GMT")
        XCTAssertEqual(HTTPDate(unixSeconds: -5).description, "Thu, 01 Jan 1970 00:00:00 GMT", "clamped")
        XCTAssertEqual(HTTPDate(unixSeconds: .max).description, "Fri, 31 Dec 9999 23:59:59 GMT", "clamped")
        XCTAssertEqual(HTTPDate(unixSeconds: 1).bytes.count, HTTPDate.byteCount)
    }

    func testCivilDateMatchesDayByDayCount() {
        // Walk every day from 1970 to 2200 with a naive calendar and compare.
        var (y, m, d) = (1970, 1, 1)
        let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for days in 0..<84_000 {
            let civil = HTTPDate.civil(fromDays: days)
            XCTAssertTrue(civil == (y, m, d), "day \(days): \(civil) != \(y)-\(m)-\(d)")
            if civil != (y, m, d) { break }
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
            d += 1
            if d > monthDays[m - 1] + (m == 2 && leap ? 1 : 0) { d = 1; m += 1 }
            if m > 12 { m = 1; y += 1 }
        }
    }

    func testHTTPDateUpdate() {
        var d = HTTPDate(unixSeconds: 784_111_777)
        d.update(unixSeconds: 784_111_777)
        XCTAssertEqual(d.description, "Sun, 06 Nov 1994 08:49:37 GMT")
        d.update(unixSeconds: 784_111_778)
        XCTAssertEqual(d.description, "Sun, 06 Nov 1994 08:49:38 GMT")
        XCTAssertEqual(d.unixSeconds, 784_111_778)
        d.update(unixSeconds: 784_198_177)
        XCTAssertEqual(d.description, "Mon, 07 Nov 1994 08:49:37 GMT")
    }
}
