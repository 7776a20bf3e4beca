// Every malformed-input rule: exact status and stable code.

import XCTest
@testable import HubHTTP

/// Malformed requests with the status and code each must produce (default limits).
enum MalformedCases {
    static func req(_ head: String, body: String = "") -> [UInt8] { b(head + "\r\n\r\n" + body) }

    static let all: [(name: String, bytes: [UInt8], status: Int, code: String)] = [
        // Request line
        ("non-token method", req("GE(T / HTTP/1.1\r\nHost: h"), 400, "invalid_method"),
        ("NUL in method", [0x47, 0x00] + req("ET / HTTP/1.1\r\nHost: h"), 400, "invalid_method"),
        ("empty method", req(" / HTTP/1.1\r\nHost: h"), 400, "invalid_method"),
        ("TLS ClientHello on plain port", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03], 400, "invalid_method"),
        ("double space after method", req("GET  / HTTP/1.1\r\nHost: h"), 400, "invalid_request_line"),
        ("method only", req("GET\r\nHost: h"), 400, "invalid_request_line"),
        ("no version", req("GET /\r\nHost: h"), 400, "invalid_request_line"),
        ("garbage version", req("GET / HTTP/1.x\r\nHost: h"), 400, "invalid_version"),
        ("lowercase version", req("GET / http/1.1\r\nHost: h"), 400, "invalid_version"),
        ("trailing space after version", req("GET / HTTP/1.1 \r\nHost: h"), 400, "invalid_version"),
        ("space inside target", req("GET /a b HTTP/1.1\r\nHost: h"), 400, "invalid_version"),
        ("version HTTP/10.0", req("GET / HTTP/10.0\r\nHost: h"), 400, "invalid_version"),
        ("HTTP/2 preface", b("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505, "http_version_not_supported"),
        ("HTTP/3.0", req("GET / HTTP/3.0\r\nHost: h"), 505, "http_version_not_supported"),
        ("HTTP/1.2", req("GET / HTTP/1.2\r\nHost: h"), 505, "http_version_not_supported"),
        // Targets
        ("authority-form", req("CONNECT hub.example.com:443 HTTP/1.1\r\nHost: hub.example.com:443"), 400, "invalid_target"),
        ("authority-form with GET", req("GET hub.example.com:80 HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("asterisk with GET", req("GET * HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("relative path", req("GET api/v1 HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("absolute-form without authority", req("GET http:///x HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("absolute-form with userinfo", req("GET http://user:pw@h/x HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("unsupported scheme", req("GET ftp://h/x HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("control byte in target", req("GET /a\u{01}b HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("DEL in target", req("GET /a\u{7F}b HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        ("NUL in target", [UInt8](b("GET /a")) + [0] + req("b HTTP/1.1\r\nHost: h"), 400, "invalid_target"),
        // Line endings
        ("bare LF after request line", b("GET / HTTP/1.1\nHost: h\r\n\r\n"), 400, "bare_lf"),
        ("bare LF after header", b("GET / HTTP/1.1\r\nHost: h\n\r\n"), 400, "bare_lf"),
        ("bare LF as blank line", b("GET / HTTP/1.1\r\nHost: h\r\n\n"), 400, "bare_lf"),
        ("bare LF before request", b("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400, "bare_lf"),
        ("bare CR in header value", req("GET / HTTP/1.1\r\nHost: h\rx"), 400, "bare_cr"),
        ("bare CR in request line", req("GET /\r HTTP/1.1\r\nHost: h"), 400, "bare_cr"),
        ("bare CR in header name", req("GET / HTTP/1.1\r\nHo\rst: h"), 400, "bare_cr"),
        ("bare CR before request", b("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400, "bare_cr"),
        // Header fields
        ("obs-fold with space", req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b"), 400, "obs_fold"),
        ("obs-fold with tab", req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb"), 400, "obs_fold"),
        ("whitespace before first header", req("GET / HTTP/1.1\r\n Host: h"), 400, "obs_fold"),
        ("space before colon", req("GET / HTTP/1.1\r\nHost : h"), 400, "invalid_header_name"),
        ("TE with space before colon", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked", body: "0\r\n\r\n"), 400, "invalid_header_name"),
        ("non-token header name", req("GET / HTTP/1.1\r\nHost: h\r\nX(A): v"), 400, "invalid_header_name"),
        ("empty header name", req("GET / HTTP/1.1\r\nHost: h\r\n: v"), 400, "invalid_header_name"),
        ("header without colon", req("GET / HTTP/1.1\r\nHost: h\r\nJustAName"), 400, "invalid_header_name"),
        ("non-ASCII header name", req("GET / HTTP/1.1\r\nHost: h\r\nX-Caf\u{e9}: v"), 400, "invalid_header_name"),
        ("NUL in header value", b("GET / HTTP/1.1\r\nHost: h\r\nX-A: a") + [0] + b("b\r\n\r\n"), 400, "invalid_header_value"),
        ("control byte in header value", req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{1B}[31m"), 400, "invalid_header_value"),
        ("DEL in header value", req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{7F}"), 400, "invalid_header_value"),
        ("missing Host", req("GET / HTTP/1.1\r\nAccept: */*"), 400, "missing_host"),
        ("duplicate Host", req("GET / HTTP/1.1\r\nHost: a\r\nHost: b"), 400, "duplicate_host"),
        ("duplicate identical Host", req("GET / HTTP/1.1\r\nHost: a\r\nhost: a"), 400, "duplicate_host"),
        ("duplicate Host in HTTP/1.0", req("GET / HTTP/1.0\r\nHost: a\r\nHost: b"), 400, "duplicate_host"),
        // Content-Length
        ("content-length with letter", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a"), 400, "invalid_content_length"),
        ("negative content-length", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1"), 400, "invalid_content_length"),
        ("plus-signed content-length", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5", body: "12345"), 400, "invalid_content_length"),
        ("hex content-length", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10"), 400, "invalid_content_length"),
        ("empty content-length", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "), 400, "invalid_content_length"),
        ("content-length with inner space", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2"), 400, "invalid_content_length"),
        ("overflowing content-length with junk", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999x"), 400, "invalid_content_length"),
        ("conflicting content-length fields", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6", body: "123456"), 400, "conflicting_content_length"),
        ("conflicting content-length list", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6", body: "123456"), 400, "conflicting_content_length"),
        ("overflowing content-length", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999"), 413, "payload_too_large"),
        ("content-length above limit", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577"), 413, "payload_too_large"),
        // Transfer-Encoding
        ("TE then CL", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5", body: "0\r\n\r\n"), 400, "transfer_encoding_with_content_length"),
        ("CL then TE", req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", body: "0\r\n\r\n"), 400, "transfer_encoding_with_content_length"),
        ("TE gzip only", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip"), 400, "invalid_transfer_encoding"),
        ("TE chunked not last", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip"), 400, "invalid_transfer_encoding"),
        ("TE chunked not last across fields", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity"), 400, "invalid_transfer_encoding"),
        ("TE chunked twice", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked"), 400, "invalid_transfer_encoding"),
        ("TE empty", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:"), 400, "invalid_transfer_encoding"),
        ("TE in HTTP/1.0", req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked", body: "0\r\n\r\n"), 400, "invalid_transfer_encoding"),
        ("TE gzip then chunked", req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked", body: "0\r\n\r\n"), 501, "unsupported_transfer_encoding"),
        // Chunked body
        ("chunk size not hex", req(chunkedHead, body: "zz\r\n"), 400, "invalid_chunk_size"),
        ("chunk size missing", req(chunkedHead, body: "\r\nabc"), 400, "invalid_chunk_size"),
        ("chunk size negative", req(chunkedHead, body: "-5\r\nhello\r\n0\r\n\r\n"), 400, "invalid_chunk_size"),
        ("chunk size trailing junk", req(chunkedHead, body: "5x\r\nhello\r\n0\r\n\r\n"), 400, "invalid_chunk_size"),
        ("chunk size trailing space only", req(chunkedHead, body: "5 \r\nhello\r\n0\r\n\r\n"), 400, "invalid_chunk_size"),
        ("chunk size overflow", req(chunkedHead, body: "1FFFFFFFFFFFFFFFF\r\n"), 400, "invalid_chunk_size"),
        ("chunk size 0x prefix", req(chunkedHead, body: "0x5\r\nhello\r\n0\r\n\r\n"), 400, "invalid_chunk_size"),
        ("chunk extension with control byte", req(chunkedHead, body: "5;a=\u{01}\r\nhello\r\n0\r\n\r\n"), 400, "invalid_chunk_extension"),
        ("chunk data too long", req(chunkedHead, body: "5\r\nhelloX\r\n0\r\n\r\n"), 400, "invalid_chunk_terminator"),
        ("chunk data bare LF", req(chunkedHead, body: "5\r\nhello\n0\r\n\r\n"), 400, "bare_lf"),
        ("chunk data bare CR", req(chunkedHead, body: "5\r\nhello\rX0\r\n\r\n"), 400, "bare_cr"),
        ("chunk size line bare LF", req(chunkedHead, body: "5\nhello\r\n0\r\n\r\n"), 400, "bare_lf"),
        ("chunk larger than body limit", req(chunkedHead, body: "100001\r\n"), 413, "payload_too_large"),
        ("trailer obs-fold", req(chunkedHead, body: "0\r\nX-T: a\r\n b\r\n\r\n"), 400, "obs_fold"),
        ("trailer bad name", req(chunkedHead, body: "0\r\nX T: a\r\n\r\n"), 400, "invalid_header_name"),
        ("trailer bare LF", req(chunkedHead, body: "0\r\nX-T: a\n\r\n"), 400, "bare_lf"),
    ]

    static let chunkedHead = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
}

final class ParserErrorTests: XCTestCase {
    func testEveryMalformedCaseGetsItsStatusAndCode() {
        for c in MalformedCases.all {
            guard let error = parseError(c.bytes) else { XCTFail("no error: \(c.name)"); continue }
            XCTAssertEqual(error.status, c.status, c.name)
            XCTAssertEqual(error.code, c.code, c.name)
            XCTAssertFalse(error.detail.isEmpty, c.name)
        }
    }

    func testEveryCodeIsInTheCatalogueWithItsStatus() {
        let catalogue = Dictionary(uniqueKeysWithValues: HTTPParseError.catalogue.map { ($0.code, $0.status) })
        for c in MalformedCases.all {
            XCTAssertEqual(catalogue[c.code], c.status, "\(c.code) missing or wrong in catalogue")
        }
        // Every catalogued code is exercised by at least one test case here or in the limit tests.
        let exercised = Set(MalformedCases.all.map(\.code) + ["uri_too_long", "headers_too_large", "too_many_headers"])
        XCTAssertEqual(Set(catalogue.keys), exercised)
    }

    func testErrorIsStickyAndStopsPipelining() {
        var parser = HTTPParser()
        parser.append(b("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\nHost: h\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n"))
        guard case .request(let first) = parser.next() else { return XCTFail("first request missing") }
        XCTAssertEqual(first.path, "/ok")
        let error = parser.next()
        XCTAssertEqual(error, .error(.bareLF))
        parser.append(b("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(parser.next(), error)
        XCTAssertEqual(parser.next(), error)
    }

    func testInvalidMethodIsReportedBeforeLineEnds() {
        // Binary garbage must fail on its first byte, not after the 8 KiB request-line budget.
        var parser = HTTPParser()
        parser.append([0x16, 0x03])
        XCTAssertEqual(parser.next(), .error(.invalidMethod()))
    }

    func testValidMethodPrefixWaitsForMore() {
        var parser = HTTPParser()
        parser.append(b("GET"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b(" /x HTTP/1.1\r\nHost: h\r\n"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\r\n"))
        guard case .request(let r) = parser.next() else { return XCTFail("no request") }
        XCTAssertEqual(r.path, "/x")
    }

    func testTrailingCRWaitsForLF() {
        var parser = HTTPParser()
        parser.append(b("\r"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\nGET / HTTP/1.1\r"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\nHost: h\r\n\r"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("\n"))
        guard case .request = parser.next() else { return XCTFail("no request") }
    }

    func testLowercaseMethodIsAValidExtensionMethod() {
        // Methods are case-sensitive tokens: "get" is legal syntax but not GET.
        let r = parseOne(b("get / HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(r?.method, .other("get"))
    }
}
