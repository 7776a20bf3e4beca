// Shared fixtures for the HubHTTP tests: sample requests, feeding helpers, a seeded RNG.

import XCTest
@testable import HubHTTP

/// What a parser produced for a whole input: the requests in order, then how it stopped.
struct ParseOutcome: Equatable, CustomStringConvertible {
    var requests: [HTTPRequest]
    /// `.needMoreData` or `.error` — never `.request`.
    var end: HTTPParseResult

    var error: HTTPParseError? {
        if case .error(let e) = end { return e }
        return nil
    }

    var description: String {
        "\(requests.count) request(s) [\(requests.map { "\($0.method) \($0.target) body=\($0.body.count)" }.joined(separator: ", "))], then \(end)"
    }
}

/// Converts a string literal (written with explicit `\r\n`) to bytes.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Feeds `chunks` one `append` at a time, draining `next()` after each, and fails the test if
/// a drain does not reach `.needMoreData`/`.error` within a bound (termination property).
func feed(_ chunks: [[UInt8]], limits: HTTPParserLimits = .init(),
          file: StaticString = #filePath, line: UInt = #line) -> ParseOutcome {
    var parser = HTTPParser(limits: limits)
    var requests: [HTTPRequest] = []
    var end = HTTPParseResult.needMoreData
    let bound = chunks.reduce(0) { $0 + $1.count } + 4
    for chunk in chunks {
        parser.append(chunk)
        var calls = 0
        drain: while true {
            calls += 1
            if calls > bound {
                XCTFail("next() did not terminate within \(bound) calls", file: file, line: line)
                return ParseOutcome(requests: requests, end: .needMoreData)
            }
            switch parser.next() {
            case .request(let r):
                requests.append(r)
            case .needMoreData:
                end = .needMoreData
                break drain
            case .error(let e):
                // Sticky: a second call must repeat the same error.
                XCTAssertEqual(parser.next(), .error(e), "error is not sticky", file: file, line: line)
                return ParseOutcome(requests: requests, end: .error(e))
            }
        }
    }
    return ParseOutcome(requests: requests, end: end)
}

func feedWhole(_ bytes: [UInt8], limits: HTTPParserLimits = .init()) -> ParseOutcome {
    feed([bytes], limits: limits)
}

func feedBytewise(_ bytes: [UInt8], limits: HTTPParserLimits = .init()) -> ParseOutcome {
    feed(bytes.map { [$0] }, limits: limits)
}

/// Parses `bytes` expecting exactly one request and nothing else buffered.
func parseOne(_ bytes: [UInt8], limits: HTTPParserLimits = .init(),
              file: StaticString = #filePath, line: UInt = #line) -> HTTPRequest? {
    let outcome = feedWhole(bytes, limits: limits)
    guard outcome.requests.count == 1, outcome.end == .needMoreData else {
        XCTFail("expected one request, got \(outcome)", file: file, line: line)
        return nil
    }
    return outcome.requests[0]
}

/// Parses `bytes` expecting a parse error; returns it.
func parseError(_ bytes: [UInt8], limits: HTTPParserLimits = .init(),
                file: StaticString = #filePath, line: UInt = #line) -> HTTPParseError? {
    let outcome = feedWhole(bytes, limits: limits)
    guard let error = outcome.error else {
        XCTFail("expected an error, got \(outcome)", file: file, line: line)
        return nil
    }
    return error
}

/// Splits `bytes` at the given sorted cut points.
func split(_ bytes: [UInt8], at cuts: [Int]) -> [[UInt8]] {
    var chunks: [[UInt8]] = []
    var start = 0
    for cut in cuts where cut >= start && cut <= bytes.count {
        chunks.append(Array(bytes[start..<cut]))
        start = cut
    }
    chunks.append(Array(bytes[start...]))
    return chunks
}

/// Deterministic PRNG (SplitMix64) so property tests are reproducible from their seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Valid requests covering every framing and target form; each parses to the listed count.
enum Samples {
    static let all: [(name: String, bytes: [UInt8], requests: Int)] = [
        ("simple GET", b("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1),
        ("GET with query and headers", b("""
            GET /api/v1/customer/devices?state=active&limit=10 HTTP/1.1\r
            Host: hub.example.com\r
            User-Agent: curl/8.5.0\r
            Accept: */*\r
            Authorization: Bearer eyJhbGciOi.J9.x\r
            X-Empty:\r
            X-Spaces: \t padded value \t\r
            \r\n
            """), 1),
        ("POST content-length", b("POST /api/v1/device/auth HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"device_id\":\"d\",\"x\":\"yz\"}\n"), 1),
        ("POST chunked with extension and trailer", b("POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; a=\"q\"\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"), 1),
        ("chunked uppercase hex, leading zeros", b("PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n000A\r\n0123456789\r\n00\r\n\r\n"), 1),
        ("HTTP/1.0 without Host", b("GET /legacy HTTP/1.0\r\nUser-Agent: ab\r\n\r\n"), 1),
        ("HTTP/1.0 keep-alive", b("GET /ka HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 1),
        ("absolute-form", b("GET http://hub.example.com:8080/api/v1/x?y=1 HTTP/1.1\r\nHost: hub.example.com:8080\r\n\r\n"), 1),
        ("absolute-form https no path", b("GET https://hub.example.com HTTP/1.1\r\nHost: hub.example.com\r\n\r\n"), 1),
        ("OPTIONS asterisk", b("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 1),
        ("websocket upgrade", b("GET /ws/device HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"), 1),
        ("leading empty lines", b("\r\n\r\nDELETE /api/v1/x/1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), 1),
        ("obs-text in value", [UInt8]("GET /caf\u{e9} HTTP/1.1\r\nHost: h\r\nX-Name: ".utf8) + [0xC3, 0xA9, 0xFF] + b("\r\n\r\n"), 1),
        ("empty body content-length 0", b("PATCH /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), 1),
        ("identical repeated content-length", b("POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 003\r\n\r\nabc"), 1),
        ("extension method", b("PURGE /cache/key HTTP/1.1\r\nHost: h\r\n\r\n"), 1),
        ("HEAD", b("HEAD /api/v1/customer/system HTTP/1.1\r\nHost: h\r\n\r\n"), 1),
        ("pipelined mixed", pipelined, 4),
        ("incomplete trailing request", b("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHo"), 1),
    ]

    /// Four pipelined requests: GET, chunked POST, Content-Length POST, GET with close.
    static let pipelined: [UInt8] = b(
        "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
        + "POST /two HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        + "POST /three HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345"
        + "GET /four HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
}
