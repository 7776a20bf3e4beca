// Randomised properties: arbitrary input never crashes, always terminates, and the result
// never depends on how the input was split.

import XCTest
@testable import HubHTTP

final class ParserPropertyTests: XCTestCase {
    /// Small limits make the limit paths reachable by short random inputs.
    private let smallLimits = HTTPParserLimits(maxRequestLineBytes: 48, maxHeaderBytes: 160,
                                               maxHeaderCount: 6, maxBodyBytes: 64, maxChunkLineBytes: 24)

    /// Bytes that matter to the grammar, over-represented so random input reaches deep states.
    private let interesting: [UInt8] = Array("\r\n :;,/?*-0123456789aAfFGETPOSTHhttp/1.\t".utf8) + [0, 0x7F, 0x80, 0xFF]

    func testRandomBytesTerminateAndAreSplitInvariant() {
        var rng = SplitMix64(seed: 0xC0FFEE)
        for iteration in 0..<1_500 {
            let length = Int.random(in: 0...200, using: &rng)
            let bytes: [UInt8] = (0..<length).map { _ in
                Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let limits = iteration % 2 == 0 ? smallLimits : HTTPParserLimits()
            checkInvariants(bytes, limits: limits, rng: &rng, label: "random #\(iteration)")
        }
    }

    func testMutatedValidRequestsTerminateAndAreSplitInvariant() {
        var rng = SplitMix64(seed: 0xBADC0DE)
        let seeds = Samples.all.map(\.bytes)
        for iteration in 0..<3_000 {
            var bytes = seeds.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                mutate(&bytes, rng: &rng)
            }
            let limits = iteration % 3 == 0 ? smallLimits : HTTPParserLimits()
            checkInvariants(bytes, limits: limits, rng: &rng, label: "mutation #\(iteration)")
        }
    }

    func testPipelinesOfRandomSamplesParseAsTheirParts() {
        // Concatenating valid complete requests yields exactly their requests, in order.
        var rng = SplitMix64(seed: 42)
        let complete = Samples.all.filter { $0.name != "incomplete trailing request" }
        for _ in 0..<200 {
            let picks = (0..<Int.random(in: 2...6, using: &rng)).map { _ in complete.randomElement(using: &rng)! }
            let stream = picks.flatMap(\.bytes)
            let expected = picks.flatMap { feedWhole($0.bytes).requests }
            let cuts = (0..<5).map { _ in Int.random(in: 0...stream.count, using: &rng) }.sorted()
            let outcome = feed(split(stream, at: cuts))
            XCTAssertEqual(outcome.requests, expected)
            XCTAssertEqual(outcome.end, .needMoreData)
        }
    }

    /// Model-based: generate a random valid request, serialise it, parse it (whole and split)
    /// and compare every field with the model.
    func testGeneratedRequestsRoundTripThroughTheParser() {
        var rng = SplitMix64(seed: 0xD0D0)
        let methods: [HTTPMethod] = [.get, .head, .post, .put, .delete, .patch, .options, .other("PURGE")]
        let tchars = Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let pathChars = Array("abcXYZ019-._~%!$&'()*+,;=:@/")
        let valueChars = Array("abc XYZ 019 \t!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
        func pick(_ chars: [Character], _ range: ClosedRange<Int>) -> String {
            String((0..<Int.random(in: range, using: &rng)).map { _ in chars.randomElement(using: &rng)! })
        }
        for iteration in 0..<500 {
            let method = methods.randomElement(using: &rng)!
            let path = "/" + pick(pathChars, 0...30)
            let query: String? = Bool.random(using: &rng) ? pick(pathChars + ["?", "="], 0...20) : nil
            let http10 = Int.random(in: 0..<5, using: &rng) == 0
            var fields: [(String, String)] = http10 ? [] : [("Host", "hub.example")]
            for _ in 0..<Int.random(in: 0...8, using: &rng) {
                // Values are trimmed by the parser, so the model has none at either end.
                var value = pick(valueChars, 0...40)
                while let c = value.first, c == " " || c == "\t" { value.removeFirst() }
                while let c = value.last, c == " " || c == "\t" { value.removeLast() }
                fields.append(("X-" + pick(tchars, 1...12), value))
            }
            let body: [UInt8] = (0..<Int.random(in: 0...100, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let chunked = !http10 && !body.isEmpty && Bool.random(using: &rng)

            var wire = b("\(method.name) \(path)\(query.map { "?" + $0 } ?? "") HTTP/1.\(http10 ? 0 : 1)\r\n")
            var expectedFields = fields
            for (name, value) in fields { wire += b("\(name):\(Bool.random(using: &rng) ? " " : "")\(value)\r\n") }
            if chunked {
                wire += b("Transfer-Encoding: chunked\r\n\r\n")
                expectedFields.append(("Transfer-Encoding", "chunked"))
                var rest = body[...]
                while !rest.isEmpty {
                    let n = Int.random(in: 1...rest.count, using: &rng)
                    wire += b(String(n, radix: 16) + "\r\n") + rest.prefix(n) + b("\r\n")
                    rest = rest.dropFirst(n)
                }
                wire += b("0\r\n\r\n")
            } else {
                if !body.isEmpty {
                    wire += b("Content-Length: \(body.count)\r\n")
                    expectedFields.append(("Content-Length", "\(body.count)"))
                }
                wire += b("\r\n") + body
            }

            let cuts = (0..<3).map { _ in Int.random(in: 0...wire.count, using: &rng) }.sorted()
            let outcome = feed(split(wire, at: cuts))
            guard outcome.requests.count == 1, outcome.end == .needMoreData else {
                XCTFail("#\(iteration): \(outcome) for \(String(decoding: wire, as: UTF8.self))")
                continue
            }
            let r = outcome.requests[0]
            XCTAssertEqual(r.method, method)
            XCTAssertEqual(r.path, path)
            XCTAssertEqual(r.query, query)
            XCTAssertEqual(r.version, http10 ? .http1_0 : .http1_1)
            XCTAssertEqual(r.headers.map(\.name), expectedFields.map(\.0))
            XCTAssertEqual(r.headers.map(\.value), expectedFields.map(\.1))
            XCTAssertEqual(r.body, body)
            XCTAssertEqual(r.keepAlive, !http10)
        }
    }

    // MARK: Helpers

    private func mutate(_ bytes: inout [UInt8], rng: inout SplitMix64) {
        guard !bytes.isEmpty else { bytes = [interesting.randomElement(using: &rng)!]; return }
        let i = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)                       // replace
        case 1: bytes[i] = interesting.randomElement(using: &rng)!                       // replace, grammar byte
        case 2: bytes.insert(interesting.randomElement(using: &rng)!, at: i)             // insert
        case 3: bytes.remove(at: i)                                                      // delete
        case 4: bytes.removeSubrange(i...)                                               // truncate
        case 5:                                                                          // duplicate a slice
            let j = min(bytes.count, i + Int.random(in: 1...32, using: &rng))
            bytes.insert(contentsOf: bytes[i..<j], at: j)
        default: bytes[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)                   // bit flip
        }
    }

    /// Whole, byte-by-byte and random splits must agree; `feed` itself fails the test if a
    /// drain does not terminate within (input length + 4) calls.
    private func checkInvariants(_ bytes: [UInt8], limits: HTTPParserLimits, rng: inout SplitMix64, label: String) {
        let whole = feedWhole(bytes, limits: limits)
        let bytewise = feedBytewise(bytes, limits: limits)
        XCTAssertEqual(bytewise, whole, "\(label) bytewise: \(bytes)")
        let cuts = (0..<3).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
        XCTAssertEqual(feed(split(bytes, at: cuts), limits: limits), whole, "\(label) cuts \(cuts): \(bytes)")
        if let error = whole.error {
            XCTAssertTrue(HTTPParseError.catalogue.contains { $0.code == error.code && $0.status == error.status },
                          "\(label): uncatalogued error \(error)")
        }
        for request in whole.requests {
            XCTAssertLessThanOrEqual(request.body.count, limits.maxBodyBytes)
            XCTAssertLessThanOrEqual(request.headers.count, limits.maxHeaderCount)
        }
    }
}
