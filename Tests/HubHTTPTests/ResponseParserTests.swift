// The response parser: status lines, framing by Content-Length / chunked / close, interim
// responses, limits, end of stream, and split invariance.

import XCTest
@testable import HubHTTP

final class ResponseParserTests: XCTestCase {
    private func one(_ bytes: [UInt8], eof: Bool = true, method: HTTPMethod = .get,
                     file: StaticString = #filePath, line: UInt = #line) -> HTTPResponse? {
        let outcome = feedResponseWhole(bytes, eof: eof, method: method)
        guard outcome.responses.count == 1 else {
            XCTFail("expected one response, got \(outcome)", file: file, line: line)
            return nil
        }
        return outcome.responses[0]
    }

    // MARK: Valid responses

    func testSamplesParse() {
        for sample in ResponseSamples.valid {
            let outcome = feedResponseWhole(sample.bytes)
            XCTAssertEqual(outcome.responses.map(\.status), sample.statuses, "\(sample.name): \(outcome)")
            // Every sample ends cleanly: EOF right after the last response reads as no_response.
            XCTAssertEqual(outcome.error?.code, "no_response", "\(sample.name): \(outcome)")
        }
    }

    func testContentLengthResponse() throws {
        let r = try XCTUnwrap(one(ResponseSamples.valid[0].bytes, eof: false))
        XCTAssertEqual(r.version, .http1_1)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.reason, "OK")
        XCTAssertEqual(r.headers["content-type"], "text/plain")
        XCTAssertEqual(r.body, b("hello"))
        XCTAssertTrue(r.keepAlive)
    }

    func testChunkedBodyIsDecodedAndTrailersDropped() throws {
        let r = try XCTUnwrap(one(ResponseSamples.valid[1].bytes, eof: false))
        XCTAssertEqual(r.body, b("hello world"))
        XCTAssertNil(r.headers["X-Sum"])
        XCTAssertTrue(r.keepAlive)
    }

    func testJWKSChunksConcatenate() throws {
        let sample = try XCTUnwrap(ResponseSamples.valid.first { $0.name == "jwks json in chunks" })
        let r = try XCTUnwrap(one(sample.bytes, eof: false))
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), #"{"keys":[{"kty":"oct","k":"AQ"}]}"#)
    }

    func testBodyUntilCloseNeedsEOF() throws {
        let bytes = b("HTTP/1.0 200 OK\r\n\r\npartial")
        let open = feedResponseWhole(bytes, eof: false)
        XCTAssertEqual(open.responses.count, 0)
        XCTAssertEqual(open.end, .needMoreData)
        let r = try XCTUnwrap(one(bytes))
        XCTAssertEqual(r.body, b("partial"))
        XCTAssertFalse(r.keepAlive)
    }

    func testKeepAliveRules() throws {
        XCTAssertFalse(try XCTUnwrap(one(b("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), eof: false)).keepAlive)
        XCTAssertFalse(try XCTUnwrap(one(b("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), eof: false)).keepAlive)
        XCTAssertTrue(try XCTUnwrap(one(b("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"), eof: false)).keepAlive)
    }

    func testHeadResponseHasNoBody() throws {
        let bytes = b("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        let r = try XCTUnwrap(one(bytes, eof: false, method: .head))
        XCTAssertEqual(r.body, [])
        XCTAssertEqual(r.headers["Content-Length"], "100")
        // The same bytes after a GET are a truncated body.
        XCTAssertEqual(feedResponseWhole(bytes, method: .get).error?.code, "truncated")
    }

    func testInterimResponsesAreSkipped() throws {
        let bytes = b("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
        let r = try XCTUnwrap(one(bytes, eof: false))
        XCTAssertEqual(r.status, 200)
        XCTAssertNil(r.headers["Link"])
    }

    func testTooManyInterimResponses() {
        let interim = b("HTTP/1.1 100 Continue\r\n\r\n")
        let bytes = Array(repeating: interim, count: 3).flatMap { $0 }
        let outcome = feedResponseWhole(bytes, eof: false, limits: .init(maxInterimResponses: 2))
        XCTAssertEqual(outcome.error?.code, "too_many_interim_responses")
    }

    func testStatusCodesAndReasons() throws {
        XCTAssertEqual(try XCTUnwrap(one(b("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"), eof: false)).reason, "")
        let r = try XCTUnwrap(one(b("HTTP/1.1 503 Service\tUnavailable now\r\nContent-Length: 0\r\n\r\n"), eof: false))
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.reason, "Service\tUnavailable now")
    }

    // MARK: Errors

    func testMalformedInputsGiveTheirCode() {
        for sample in ResponseSamples.malformed {
            XCTAssertEqual(feedResponseWhole(sample.bytes).error?.code, sample.code, sample.name)
        }
    }

    func testNonHTTPPeerIsRefusedOnItsFirstBytes() {
        // Without EOF and far below any limit: the prefix check decides at once.
        XCTAssertEqual(feedResponseWhole([0x15, 0x03], eof: false).error?.code, "invalid_status_line")
        XCTAssertEqual(feedResponseWhole(b("HTTQ"), eof: false).error?.code, "invalid_status_line")
        XCTAssertEqual(feedResponseWhole(b("HTTP"), eof: false).end, .needMoreData)
    }

    func testHeadSizeLimit() {
        let limits = HTTPResponseParserLimits(maxHeadBytes: 64)
        let big = b("HTTP/1.1 200 OK\r\nX-Pad: \(String(repeating: "p", count: 60))\r\n\r\n")
        XCTAssertEqual(feedResponseWhole(big, eof: false, limits: limits).error?.code, "headers_too_large")
        XCTAssertEqual(feedResponseBytewise(big, eof: false, limits: limits).error?.code, "headers_too_large")
        // A status line that never ends is refused at the limit, not at EOF.
        let endless = b("HTTP/1.1 200 ") + Array(repeating: UInt8(ascii: "a"), count: 100)
        XCTAssertEqual(feedResponseWhole(endless, eof: false, limits: limits).error?.code, "headers_too_large")
        let fits = b("HTTP/1.1 200 OK\r\nX-Pad: \(String(repeating: "p", count: 17))\r\nContent-Length: 0\r\n\r\n")
        XCTAssertLessThanOrEqual(fits.count, 64)
        XCTAssertEqual(feedResponseWhole(fits, eof: false, limits: limits).responses.count, 1)
    }

    func testHeaderCountLimit() {
        let limits = HTTPResponseParserLimits(maxHeaderCount: 3)
        let three = b("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(feedResponseWhole(three, eof: false, limits: limits).responses.count, 1)
        let four = b("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(feedResponseWhole(four, eof: false, limits: limits).error?.code, "too_many_headers")
    }

    func testBodyLimitForEveryFraming() {
        let limits = HTTPResponseParserLimits(maxBodyBytes: 10)
        let exact = b("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        XCTAssertEqual(feedResponseWhole(exact, eof: false, limits: limits).responses.first?.body.count, 10)
        let cases: [(String, [UInt8])] = [
            ("content-length", b("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")),
            ("chunked total", b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n")),
            ("until close", b("HTTP/1.1 200 OK\r\n\r\n0123456789A")),
        ]
        for (name, bytes) in cases {
            let outcome = feedResponseWhole(bytes, eof: false, limits: limits)
            XCTAssertEqual(outcome.error?.code, "payload_too_large", name)
            XCTAssertEqual(outcome.error?.isBodyTooLarge, true, name)
            XCTAssertEqual(feedResponseBytewise(bytes, eof: false, limits: limits), outcome, name)
        }
        // Until close exactly at the limit is fine.
        let atLimit = feedResponseWhole(b("HTTP/1.1 200 OK\r\n\r\n0123456789"), limits: limits)
        XCTAssertEqual(atLimit.responses.first?.body.count, 10)
    }

    func testChunkLineLimit() {
        let limits = HTTPResponseParserLimits(maxChunkLineBytes: 8)
        let long = b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;aaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n")
        XCTAssertEqual(feedResponseWhole(long, eof: false, limits: limits).error?.code, "invalid_chunk_extension")
    }

    func testInputAfterErrorOrEOFIsIgnored() {
        var parser = HTTPResponseParser()
        parser.append(b("nope"))
        XCTAssertEqual(parser.next(), .error(.notHTTP))
        parser.append(b("HTTP/1.1 200 OK\r\n\r\n"))
        XCTAssertEqual(parser.bufferedByteCount, 4)
        XCTAssertEqual(parser.next(), .error(.notHTTP))
    }

    func testRequestMethodCanChangeBetweenResponses() {
        var parser = HTTPResponseParser(requestMethod: .head)
        parser.append(b("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"))
        guard case .response(let first) = parser.next() else { return XCTFail("no first response") }
        XCTAssertEqual(first.body, [])
        parser.requestMethod = .get
        parser.append(b("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
        guard case .response(let second) = parser.next() else { return XCTFail("no second response") }
        XCTAssertEqual(second.body, b("abc"))
    }

    // MARK: Split invariance

    private var allInputs: [(String, [UInt8])] {
        ResponseSamples.valid.map { ($0.name, $0.bytes) } + ResponseSamples.malformed.map { ($0.name, $0.bytes) }
    }

    func testByteByByteMatchesWhole() {
        for (name, bytes) in allInputs {
            XCTAssertEqual(feedResponseBytewise(bytes), feedResponseWhole(bytes), name)
            XCTAssertEqual(feedResponseBytewise(bytes, eof: false), feedResponseWhole(bytes, eof: false), "\(name) (no EOF)")
        }
    }

    func testEverySplitMatchesWhole() {
        for (name, bytes) in allInputs {
            let whole = feedResponseWhole(bytes)
            for cut in 0...bytes.count {
                let outcome = feedResponse(split(bytes, at: [cut]))
                XCTAssertEqual(outcome, whole, "\(name) split at \(cut)")
                if outcome != whole { break }
            }
        }
    }

    func testRandomMultiSplitsMatchWhole() {
        var rng = SplitMix64(seed: 0x5EED_0A11)
        for (name, bytes) in allInputs {
            let whole = feedResponseWhole(bytes)
            for _ in 0..<30 {
                let cuts = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
                XCTAssertEqual(feedResponse(split(bytes, at: cuts)), whole, "\(name) cuts \(cuts)")
            }
        }
    }

    /// Random mutations of the samples must never crash or hang, and stay split-invariant.
    func testMutatedSamplesAreSplitInvariant() {
        var rng = SplitMix64(seed: 0xBAD_5EED)
        let alphabet = b("HTTP/1.0 \r\n:;,chunked0123456789aZ\t") + [0x00, 0x7F, 0xFF]
        for _ in 0..<300 {
            var bytes = ResponseSamples.valid.randomElement(using: &rng)!.bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: bytes.remove(at: i)
                default: bytes.insert(alphabet.randomElement(using: &rng)!, at: i)
                }
            }
            let whole = feedResponseWhole(bytes)
            XCTAssertEqual(feedResponseBytewise(bytes), whole, String(decoding: bytes, as: UTF8.self))
        }
    }
}
