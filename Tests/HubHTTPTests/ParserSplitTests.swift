// The parser's result must not depend on how the input was split across reads.

import XCTest
@testable import HubHTTP

final class ParserSplitTests: XCTestCase {
    func testSamplesParseWhole() {
        for sample in Samples.all {
            let outcome = feedWhole(sample.bytes)
            XCTAssertNil(outcome.error, "\(sample.name): \(outcome)")
            XCTAssertEqual(outcome.requests.count, sample.requests, sample.name)
        }
    }

    func testSamplesByteByByteMatchWhole() {
        for sample in Samples.all {
            XCTAssertEqual(feedBytewise(sample.bytes), feedWhole(sample.bytes), sample.name)
        }
    }

    func testSamplesSplitAtEveryIndexMatchWhole() {
        for sample in Samples.all {
            let whole = feedWhole(sample.bytes)
            for cut in 0...sample.bytes.count {
                let outcome = feed(split(sample.bytes, at: [cut]))
                XCTAssertEqual(outcome, whole, "\(sample.name) split at \(cut)")
                if outcome != whole { break }
            }
        }
    }

    func testSamplesRandomMultiSplitsMatchWhole() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for sample in Samples.all {
            let whole = feedWhole(sample.bytes)
            for _ in 0..<40 {
                let cutCount = Int.random(in: 1...8, using: &rng)
                let cuts = (0..<cutCount).map { _ in Int.random(in: 0...sample.bytes.count, using: &rng) }.sorted()
                XCTAssertEqual(feed(split(sample.bytes, at: cuts)), whole, "\(sample.name) cuts \(cuts)")
            }
        }
    }

    /// Errors, too, must be reported identically however the bytes arrive.
    func testMalformedInputsAreSplitInvariant() {
        for (name, bytes, _, _) in MalformedCases.all {
            let whole = feedWhole(bytes)
            XCTAssertEqual(feedBytewise(bytes), whole, name)
            for cut in stride(from: 0, through: bytes.count, by: max(1, bytes.count / 40)) {
                XCTAssertEqual(feed(split(bytes, at: [cut])), whole, "\(name) split at \(cut)")
            }
        }
    }

    func testPipelinedRequestsComeOutInOrder() {
        let outcome = feedWhole(Samples.pipelined)
        XCTAssertEqual(outcome.end, .needMoreData)
        XCTAssertEqual(outcome.requests.map(\.path), ["/one", "/two", "/three", "/four"])
        XCTAssertEqual(outcome.requests.map(\.body), [[], b("abcde"), b("12345"), []])
        XCTAssertEqual(outcome.requests.map(\.keepAlive), [true, true, true, false])
        XCTAssertEqual(feedBytewise(Samples.pipelined), outcome)
    }

    func testPipelinedRequestsAcrossManyAppends() {
        // 50 requests, alternating framings, appended in odd-sized pieces.
        var stream: [UInt8] = []
        for i in 0..<50 {
            switch i % 3 {
            case 0: stream += b("GET /r/\(i) HTTP/1.1\r\nHost: h\r\n\r\n")
            case 1: stream += b("POST /r/\(i) HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody")
            default: stream += b("POST /r/\(i) HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n")
            }
        }
        let cuts = Array(stride(from: 7, to: stream.count, by: 37))
        let outcome = feed(split(stream, at: cuts))
        XCTAssertEqual(outcome.end, .needMoreData)
        XCTAssertEqual(outcome.requests.map(\.path), (0..<50).map { "/r/\($0)" })
        XCTAssertEqual(outcome, feedWhole(stream))
    }

    func testTakeBufferedBytesAfterUpgradeReturnsTrailingBytes() {
        let frames: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        var parser = HTTPParser()
        parser.append(Samples.all.first { $0.name == "websocket upgrade" }!.bytes + frames)
        guard case .request(let request) = parser.next() else { return XCTFail("no request") }
        XCTAssertTrue(request.isUpgrade)
        XCTAssertEqual(request.headers["upgrade"], "websocket")
        XCTAssertEqual(parser.bufferedByteCount, frames.count)
        XCTAssertEqual(parser.takeBufferedBytes(), frames)
        XCTAssertEqual(parser.bufferedByteCount, 0)
        XCTAssertEqual(parser.takeBufferedBytes(), [])
    }

    func testTakeBufferedBytesMidRequestResetsParser() {
        var parser = HTTPParser()
        parser.append(b("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHo"))
        guard case .request = parser.next() else { return XCTFail("no request") }
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertEqual(parser.takeBufferedBytes(), b("Ho"))
        parser.append(b("GET /c HTTP/1.1\r\nHost: h\r\n\r\n"))
        guard case .request(let c) = parser.next() else { return XCTFail("parser did not reset") }
        XCTAssertEqual(c.path, "/c")
    }

    func testBufferIsReusedAcrossManyRequests() {
        // A long keep-alive session: the buffered count must return to zero after each request,
        // i.e. consumed bytes are really dropped rather than accumulated.
        var parser = HTTPParser()
        let request = b("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789")
        for _ in 0..<2_000 {
            parser.append(request)
            guard case .request(let r) = parser.next() else { return XCTFail("no request") }
            XCTAssertEqual(r.body.count, 10)
            XCTAssertEqual(parser.bufferedByteCount, 0)
        }
    }

    func testRawBufferAppendMatchesArrayAppend() {
        let bytes = Samples.pipelined
        var parser = HTTPParser()
        bytes.withUnsafeBytes { parser.append($0) }
        var requests: [HTTPRequest] = []
        while case .request(let r) = parser.next() { requests.append(r) }
        XCTAssertEqual(requests, feedWhole(bytes).requests)
    }

    func testPartialRequestAndBodyPhaseFlags() {
        // The connection uses these to pick the head or the body deadline.
        var parser = HTTPParser()
        XCTAssertFalse(parser.hasPartialRequest)
        XCTAssertFalse(parser.isReadingBody)
        parser.append(b("POST /x HTTP/1.1\r\nHost: h\r\n"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertTrue(parser.hasPartialRequest, "header lines were consumed but the request is open")
        XCTAssertFalse(parser.isReadingBody)
        parser.append(b("Content-Length: 4\r\n\r\nab"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertTrue(parser.hasPartialRequest)
        XCTAssertTrue(parser.isReadingBody)
        parser.append(b("cd"))
        guard case .request = parser.next() else { return XCTFail("no request") }
        XCTAssertFalse(parser.hasPartialRequest)
        XCTAssertFalse(parser.isReadingBody)
        parser.append(b("G"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertTrue(parser.hasPartialRequest)
    }

    func testBodyArrivingInPiecesAfterHead() {
        var parser = HTTPParser()
        parser.append(b("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("cd"))
        XCTAssertEqual(parser.next(), .needMoreData)
        parser.append(b("efGET"))
        guard case .request(let r) = parser.next() else { return XCTFail("no request") }
        XCTAssertEqual(r.body, b("abcdef"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertEqual(parser.bufferedByteCount, 3)
    }
}
