// Fixtures for the response parser tests: a feeding helper that mirrors the request side's
// `feed`, and the sample and malformed responses every split test runs over.

import XCTest
@testable import HubHTTP

/// What the response parser produced for a whole input: responses in order, then how it
/// stopped (`.needMoreData` or `.error`, never `.response`).
struct ResponseOutcome: Equatable, CustomStringConvertible {
    var responses: [HTTPResponse]
    var end: HTTPResponseParseResult

    var error: HTTPResponseParseError? {
        if case .error(let e) = end { return e }
        return nil
    }

    var description: String {
        "\(responses.count) response(s) [\(responses.map { "\($0.status) body=\($0.body.count)" }.joined(separator: ", "))], then \(end)"
    }
}

/// Feeds `chunks` one `append` at a time, draining `next()` after each; with `eof`, then calls
/// `finish()` and drains once more. Fails the test if a drain does not terminate or an error
/// is not sticky.
func feedResponse(_ chunks: [[UInt8]], eof: Bool = true, limits: HTTPResponseParserLimits = .init(),
                  method: HTTPMethod = .get, file: StaticString = #filePath, line: UInt = #line) -> ResponseOutcome {
    var parser = HTTPResponseParser(limits: limits, requestMethod: method)
    var responses: [HTTPResponse] = []
    let bound = chunks.reduce(0) { $0 + $1.count } + 4
    func drain() -> HTTPResponseParseResult? {
        for _ in 0..<bound {
            switch parser.next() {
            case .response(let r): responses.append(r)
            case .needMoreData: return .needMoreData
            case .error(let e):
                XCTAssertEqual(parser.next(), .error(e), "error is not sticky", file: file, line: line)
                return .error(e)
            }
        }
        XCTFail("next() did not terminate within \(bound) calls", file: file, line: line)
        return nil
    }
    var end = HTTPResponseParseResult.needMoreData
    for chunk in chunks {
        parser.append(chunk)
        guard let result = drain() else { return ResponseOutcome(responses: responses, end: .needMoreData) }
        end = result
        if case .error = result { return ResponseOutcome(responses: responses, end: end) }
    }
    if eof {
        parser.finish()
        // A clean end after a response reads as no_response; keep the outcome comparable.
        guard let result = drain() else { return ResponseOutcome(responses: responses, end: .needMoreData) }
        end = result
    }
    return ResponseOutcome(responses: responses, end: end)
}

func feedResponseWhole(_ bytes: [UInt8], eof: Bool = true, limits: HTTPResponseParserLimits = .init(),
                       method: HTTPMethod = .get) -> ResponseOutcome {
    feedResponse([bytes], eof: eof, limits: limits, method: method)
}

func feedResponseBytewise(_ bytes: [UInt8], eof: Bool = true, limits: HTTPResponseParserLimits = .init(),
                          method: HTTPMethod = .get) -> ResponseOutcome {
    feedResponse(bytes.map { [$0] }, eof: eof, limits: limits, method: method)
}

enum ResponseSamples {
    /// Valid inputs and the statuses they produce (fed whole, then EOF).
    static let valid: [(name: String, bytes: [UInt8], statuses: [Int])] = [
        ("content-length", b("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"), [200]),
        ("chunked with extension and trailer",
         b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"), [200]),
        ("until close", b("HTTP/1.0 200 OK\r\nServer: legacy\r\n\r\nbody until the close"), [200]),
        ("until close, empty", b("HTTP/1.1 200 OK\r\n\r\n"), [200]),
        ("204 then 200 pipelined", b("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), [204, 200]),
        ("100 continue skipped", b("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"), [201]),
        ("304 ignores content-length", b("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n"), [304]),
        ("empty reason", b("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), [200]),
        ("no reason, no SP", b("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"), [404]),
        ("obs-text reason", b("HTTP/1.1 200 ") + [0xC3, 0xA9] + b("\r\nContent-Length: 1\r\n\r\nx"), [200]),
        ("connection close", b("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 3\r\n\r\nerr"), [500]),
        ("uppercase hex chunks", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n"), [200]),
        ("jwks json in chunks", b("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "c\r\n{\"keys\":[{\"k\r\n"
            + "10\r\nty\":\"oct\",\"k\":\"A\r\n"
            + "5\r\nQ\"}]}\r\n0\r\n\r\n"), [200]),
        ("101 switching protocols", b("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), [101]),
    ]

    /// Malformed or cut-short inputs and the code each must produce (fed whole, then EOF).
    static let malformed: [(name: String, bytes: [UInt8], code: String)] = [
        ("bare LF", b("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), "bare_lf"),
        ("empty line first", b("\r\nHTTP/1.1 200 OK\r\n\r\n"), "invalid_status_line"),
        ("not HTTP", b("SSH-2.0-OpenSSH_9.6\r\n"), "invalid_status_line"),
        ("TLS alert", [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x50], "invalid_status_line"),
        ("lowercase http", b("http/1.1 200 OK\r\n\r\n"), "invalid_status_line"),
        ("HTTP/2 short version", b("HTTP/2 200\r\n\r\n"), "invalid_status_line"),
        ("HTTP/2.0", b("HTTP/2.0 200 OK\r\n\r\n"), "http_version_not_supported"),
        ("two-digit status", b("HTTP/1.1 20 OK\r\n\r\n"), "invalid_status_line"),
        ("no SP before reason", b("HTTP/1.1 200OK\r\n\r\n"), "invalid_status_line"),
        ("status out of range", b("HTTP/1.1 999 Weird\r\n\r\n"), "invalid_status_line"),
        ("control byte in reason", b("HTTP/1.1 200 O\u{1}K\r\n\r\n"), "invalid_status_line"),
        ("bare CR in header", b("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"), "bare_cr"),
        ("obs-fold", b("HTTP/1.1 200 OK\r\nA: b\r\n c\r\nContent-Length: 0\r\n\r\n"), "obs_fold"),
        ("space before colon", b("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"), "invalid_header_name"),
        ("conflicting content-length", b("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello"), "conflicting_content_length"),
        ("content-length not digits", b("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"), "invalid_content_length"),
        ("TE with CL", b("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), "transfer_encoding_with_content_length"),
        ("gzip only", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"), "invalid_transfer_encoding"),
        ("gzip then chunked", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), "unsupported_transfer_encoding"),
        ("bad chunk size", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), "invalid_chunk_size"),
        ("chunk overflow", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\n"), "invalid_chunk_size"),
        ("chunk without CRLF", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n"), "invalid_chunk_terminator"),
        ("content-length over limit", b("HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n"), "payload_too_large"),
        ("chunk over limit", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n"), "payload_too_large"),
        ("no response", [], "no_response"),
        ("truncated status line", b("HTTP/1.1 20"), "truncated"),
        ("truncated head", b("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), "truncated"),
        ("truncated body", b("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"), "truncated"),
        ("truncated chunked", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), "truncated"),
        ("truncated trailers", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n"), "truncated"),
        ("only interim", b("HTTP/1.1 100 Continue\r\n\r\n"), "truncated"),
        ("good then bad", b("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nA\r\n\r\n"), "invalid_header_name"),
    ]
}
