// HTTPHeaders API, HTTPMethod mapping and the byte-class tables behind the parser.

import XCTest
@testable import HubHTTP

final class HeadersAndSyntaxTests: XCTestCase {
    func testSubscriptIsCaseInsensitiveAndReturnsFirst() {
        var h = HTTPHeaders()
        h.add(name: "Accept", value: "text/html")
        h.add(name: "ACCEPT", value: "application/json")
        XCTAssertEqual(h["accept"], "text/html")
        XCTAssertEqual(h.values("Accept"), ["text/html", "application/json"])
        XCTAssertNil(h["Accept-Encoding"])
        XCTAssertEqual(h.count, 2)
    }

    func testNamesKeepTheirSpellingAndOrder() {
        let h: HTTPHeaders = ["x-B": "1", "X-a": "2", "x-B": "3"]
        XCTAssertEqual(h.map(\.name), ["x-B", "X-a", "x-B"])
        XCTAssertEqual(h.map(\.value), ["1", "2", "3"])
    }

    func testContainsToken() {
        let h: HTTPHeaders = ["Connection": "keep-alive, Upgrade", "connection": " TE ,, close "]
        XCTAssertTrue(h.containsToken("upgrade", in: "Connection"))
        XCTAssertTrue(h.containsToken("KEEP-ALIVE", in: "connection"))
        XCTAssertTrue(h.containsToken("close", in: "CONNECTION"))
        XCTAssertTrue(h.containsToken("te", in: "Connection"))
        XCTAssertFalse(h.containsToken("keep", in: "Connection"), "no prefix matches")
        XCTAssertFalse(h.containsToken("alive", in: "Connection"))
        XCTAssertFalse(h.containsToken("upgrade", in: "Upgrade"))
        XCTAssertFalse(h.containsToken("", in: "Connection"))
    }

    func testReplaceAndRemove() {
        var h: HTTPHeaders = ["Set-Cookie": "a=1", "set-cookie": "b=2", "Server": "hub"]
        h.replaceOrAdd(name: "SET-COOKIE", value: "c=3")
        XCTAssertEqual(h.values("set-cookie"), ["c=3"])
        h.remove(name: "server")
        XCTAssertFalse(h.contains("Server"))
        XCTAssertEqual(h.count, 1)
    }

    func testNonASCIINamesDoNotMatchCaseFolded() {
        let h: HTTPHeaders = ["X-\u{c9}": "v"]
        XCTAssertNil(h["x-\u{e9}"], "only ASCII letters fold")
        XCTAssertEqual(h["X-\u{c9}"], "v")
    }

    func testTcharMasksMatchRFC9110() {
        let tchars = Set(Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8))
        for byte in 0...255 {
            XCTAssertEqual(HTTPSyntax.isTchar(UInt8(byte)), tchars.contains(UInt8(byte)), "byte \(byte)")
        }
    }

    func testForbiddenValueBytes() {
        for byte in 0...255 {
            let b = UInt8(byte)
            let expected = (b < 0x20 && b != 0x09) || b == 0x7F
            XCTAssertEqual(HTTPSyntax.isForbiddenInValue(b), expected, "byte \(byte)")
        }
    }

    func testFirstLFFindsEveryPositionAndRespectsBounds() {
        for length in 0..<40 {
            for position in 0..<max(length, 1) where length > 0 {
                var bytes = [UInt8](repeating: 0x41, count: length)
                bytes[position] = 0x0A
                bytes.withUnsafeBufferPointer { buf in
                    XCTAssertEqual(HTTPSyntax.firstLF(in: buf, from: 0, to: length), position)
                    XCTAssertEqual(HTTPSyntax.firstLF(in: buf, from: position + 1, to: length), nil)
                    XCTAssertEqual(HTTPSyntax.firstLF(in: buf, from: 0, to: position), nil)
                }
            }
        }
        // Bytes that differ from LF by one bit must not be mistaken for it.
        let near: [UInt8] = [0x0B, 0x08, 0x8A, 0x1A, 0x0E, 0x02, 0x4A, 0x2A, 0x09, 0x0B]
        near.withUnsafeBufferPointer { XCTAssertNil(HTTPSyntax.firstLF(in: $0, from: 0, to: $0.count)) }
    }

    func testFirstForbiddenValueByteMatchesBytewiseScan() {
        var rng = SplitMix64(seed: 7)
        let pool: [UInt8] = [0x09, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0xFF, 0x00, 0x1F, 0x0D, 0x5F, 0x3A]
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in
                Int.random(in: 0..<4, using: &rng) == 0 ? pool.randomElement(using: &rng)! : UInt8.random(in: 0x20...0x7E, using: &rng)
            }
            let from = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &rng)
            let expected = bytes[from...].firstIndex { HTTPSyntax.isForbiddenInValue($0) }
            bytes.withUnsafeBufferPointer { buf in
                XCTAssertEqual(HTTPSyntax.firstForbiddenValueByte(in: buf, from: from, to: buf.count), expected, "\(bytes) from \(from)")
            }
        }
    }

    func testMethodInitMapsKnownNames() {
        XCTAssertEqual(HTTPMethod(name: "GET"), .get)
        XCTAssertEqual(HTTPMethod(name: "DELETE"), .delete)
        XCTAssertEqual(HTTPMethod(name: "OPTIONS"), .options)
        XCTAssertEqual(HTTPMethod(name: "get"), .other("get"))
        XCTAssertEqual(HTTPMethod(bytes: Array("PATCH".utf8)), .patch)
        XCTAssertEqual(HTTPMethod(bytes: "PUT".utf8), .put)
        XCTAssertEqual(HTTPMethod(bytes: Array("POSTX".utf8)), .other("POSTX"))
        XCTAssertEqual(HTTPMethod.other("MKCOL").name, "MKCOL")
    }

    func testVersionParse() {
        func parse(_ s: String) -> String {
            Array(s.utf8).withUnsafeBufferPointer { buf in
                switch HTTPVersion.parse(buf, 0, buf.count) {
                case .supported(let v): return v.description
                case .unsupported: return "505"
                case .malformed: return "400"
                }
            }
        }
        XCTAssertEqual(parse("HTTP/1.1"), "HTTP/1.1")
        XCTAssertEqual(parse("HTTP/1.0"), "HTTP/1.0")
        XCTAssertEqual(parse("HTTP/2.0"), "505")
        XCTAssertEqual(parse("HTTP/0.9"), "505")
        XCTAssertEqual(parse("HTTP/1.1 "), "400")
        XCTAssertEqual(parse("HTTP/1"), "400")
        XCTAssertEqual(parse("HTTPS/1.1"), "400")
        XCTAssertEqual(parse("HTTP/a.b"), "400")
    }

    func testCatalogueCodesAreUniqueSnakeCase() {
        let codes = HTTPParseError.catalogue.map(\.code)
        XCTAssertEqual(Set(codes).count, codes.count)
        for code in codes {
            XCTAssertTrue(code.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLowercase || $0.isNumber)) }, code)
        }
    }
}
