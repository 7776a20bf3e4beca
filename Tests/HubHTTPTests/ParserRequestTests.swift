// What a valid request parses into: method, target parts, version, headers, connection flags.

import XCTest
@testable import HubHTTP

final class ParserRequestTests: XCTestCase {
    func testSimpleGet() throws {
        let r = try XCTUnwrap(parseOne(b("GET /api/v1/customer/devices/42/status HTTP/1.1\r\nHost: hub\r\n\r\n")))
        XCTAssertEqual(r.method, .get)
        XCTAssertEqual(r.target, "/api/v1/customer/devices/42/status")
        XCTAssertEqual(r.path, "/api/v1/customer/devices/42/status")
        XCTAssertNil(r.query)
        XCTAssertEqual(r.version, .http1_1)
        XCTAssertEqual(r.headers.count, 1)
        XCTAssertEqual(r.headers["HOST"], "hub")
        XCTAssertEqual(r.body, [])
        XCTAssertTrue(r.keepAlive)
        XCTAssertFalse(r.isUpgrade)
    }

    func testQueryIsSplitAndNotDecoded() throws {
        let r = try XCTUnwrap(parseOne(b("GET /a%2Fb/c?x=1&y=%20#frag? HTTP/1.1\r\nHost: h\r\n\r\n")))
        XCTAssertEqual(r.path, "/a%2Fb/c")
        XCTAssertEqual(r.query, "x=1&y=%20#frag?")
        XCTAssertEqual(r.target, "/a%2Fb/c?x=1&y=%20#frag?")
    }

    func testEmptyQuery() throws {
        let r = try XCTUnwrap(parseOne(b("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n")))
        XCTAssertEqual(r.path, "/a")
        XCTAssertEqual(r.query, "")
    }

    func testHeadersKeepOrderNamesAndTrimValues() throws {
        let sample = Samples.all.first { $0.name == "GET with query and headers" }!
        let r = try XCTUnwrap(parseOne(sample.bytes))
        XCTAssertEqual(r.headers.map(\.name), ["Host", "User-Agent", "Accept", "Authorization", "X-Empty", "X-Spaces"])
        XCTAssertEqual(r.headers["x-empty"], "")
        XCTAssertEqual(r.headers["X-SPACES"], "padded value")
        XCTAssertEqual(r.path, "/api/v1/customer/devices")
        XCTAssertEqual(r.query, "state=active&limit=10")
    }

    func testObsTextValuesAreKept() throws {
        let sample = Samples.all.first { $0.name == "obs-text in value" }!
        let r = try XCTUnwrap(parseOne(sample.bytes))
        XCTAssertEqual(r.path, "/caf\u{e9}")
        // 0xFF is not UTF-8: the String gets a replacement character, the request is accepted.
        XCTAssertEqual(r.headers["x-name"], "\u{e9}\u{FFFD}")
    }

    func testMethods() {
        let cases: [(String, HTTPMethod)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
            ("PATCH", .patch), ("OPTIONS", .options), ("PURGE", .other("PURGE")), ("M-SEARCH", .other("M-SEARCH")),
        ]
        for (name, method) in cases {
            let target = method == .options ? "*" : "/"
            let r = parseOne(b("\(name) \(target) HTTP/1.1\r\nHost: h\r\n\r\n"))
            XCTAssertEqual(r?.method, method, name)
            XCTAssertEqual(r?.method.name, name)
        }
    }

    func testAbsoluteFormIsAccepted() throws {
        let r = try XCTUnwrap(parseOne(b("GET http://hub.example.com:8080/api/v1/x?y=1 HTTP/1.1\r\nHost: hub.example.com:8080\r\n\r\n")))
        XCTAssertEqual(r.target, "http://hub.example.com:8080/api/v1/x?y=1")
        XCTAssertEqual(r.path, "/api/v1/x")
        XCTAssertEqual(r.query, "y=1")

        let bare = try XCTUnwrap(parseOne(b("GET HTTPS://Hub.Example.com HTTP/1.1\r\nHost: h\r\n\r\n")))
        XCTAssertEqual(bare.path, "/")
        XCTAssertNil(bare.query)

        let queryOnly = try XCTUnwrap(parseOne(b("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n")))
        XCTAssertEqual(queryOnly.path, "/")
        XCTAssertEqual(queryOnly.query, "q")
    }

    func testAsteriskFormWithOptions() throws {
        let r = try XCTUnwrap(parseOne(b("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")))
        XCTAssertEqual(r.method, .options)
        XCTAssertEqual(r.path, "*")
        XCTAssertEqual(r.target, "*")
    }

    func testHTTP10DefaultsToClose() throws {
        let r = try XCTUnwrap(parseOne(b("GET / HTTP/1.0\r\n\r\n")))
        XCTAssertEqual(r.version, .http1_0)
        XCTAssertFalse(r.keepAlive)
        XCTAssertEqual(r.headers.count, 0)
    }

    func testHTTP10KeepAlive() throws {
        let r = try XCTUnwrap(parseOne(b("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")))
        XCTAssertTrue(r.keepAlive)
        let both = try XCTUnwrap(parseOne(b("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")))
        XCTAssertFalse(both.keepAlive, "close wins over keep-alive")
    }

    func testHTTP10WithBodyAndHost() throws {
        let r = try XCTUnwrap(parseOne(b("POST /x HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")))
        XCTAssertEqual(r.body, b("hi"))
    }

    func testHTTP11ConnectionClose() throws {
        let r = try XCTUnwrap(parseOne(b("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, CLOSE\r\n\r\n")))
        XCTAssertFalse(r.keepAlive)
        XCTAssertTrue(r.headers.containsToken("close", in: "connection"))
    }

    func testUpgradeNeedsBothConnectionTokenAndUpgradeHeader() throws {
        let full = try XCTUnwrap(parseOne(b("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")))
        XCTAssertTrue(full.isUpgrade)
        XCTAssertTrue(full.keepAlive)
        let noToken = try XCTUnwrap(parseOne(b("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")))
        XCTAssertFalse(noToken.isUpgrade)
        let noHeader = try XCTUnwrap(parseOne(b("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n")))
        XCTAssertFalse(noHeader.isUpgrade)
        let split = try XCTUnwrap(parseOne(b("GET /ws HTTP/1.1\r\nConnection: keep-alive\r\nHost: h\r\nconnection: upgrade\r\nUPGRADE: h2c\r\n\r\n")))
        XCTAssertTrue(split.isUpgrade)
    }

    func testLeadingEmptyLinesAreIgnored() throws {
        let r = try XCTUnwrap(parseOne(b("\r\n\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n")))
        XCTAssertEqual(r.path, "/x")
        // Also between pipelined requests (CRLF after a POST body, RFC 9112 §2.2).
        let outcome = feedWhole(b("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(outcome.requests.map(\.path), ["/a", "/b"])
    }

    func testContentLengthBody() throws {
        let r = try XCTUnwrap(parseOne(b("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 00011\r\n\r\nhello world")))
        XCTAssertEqual(r.body, b("hello world"))
        let repeated = try XCTUnwrap(parseOne(b("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2,2\r\ncontent-length: 2\r\n\r\nok")))
        XCTAssertEqual(repeated.body, b("ok"))
    }

    func testBodyBytesAreBinarySafe() throws {
        let payload: [UInt8] = (0...255).map { UInt8($0) }
        let r = try XCTUnwrap(parseOne(b("POST /bin HTTP/1.1\r\nHost: h\r\nContent-Length: 256\r\n\r\n") + payload))
        XCTAssertEqual(r.body, payload)
    }

    func testHeaderValueWithColonsAndTabs() throws {
        let r = try XCTUnwrap(parseOne(b("GET / HTTP/1.1\r\nHost: h:8080\r\nX-A:\ta:b\tc\t\r\n\r\n")))
        XCTAssertEqual(r.headers["host"], "h:8080")
        XCTAssertEqual(r.headers["x-a"], "a:b\tc")
    }

    func testTokenCharactersInHeaderNames() throws {
        let name = "!#$%&'*+-.^_`|~09azAZ"
        let r = try XCTUnwrap(parseOne(b("GET / HTTP/1.1\r\nHost: h\r\n\(name): v\r\n\r\n")))
        XCTAssertEqual(r.headers[name], "v")
    }
}

/// `Expect: 100-continue`: the parser says when the server should send the interim response.
final class ExpectContinueTests: XCTestCase {
    func testAwaitsContinueOnlyBetweenHeadAndCompleteBody() {
        var parser = HTTPParser()
        parser.append(b("POST /u HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertFalse(parser.awaitsContinue, "head not complete yet")
        parser.append(b("\r\n"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertTrue(parser.awaitsContinue)
        parser.append(b("ab"))
        XCTAssertEqual(parser.next(), .needMoreData)
        XCTAssertTrue(parser.awaitsContinue, "body still incomplete")
        parser.append(b("cd"))
        guard case .request(let request) = parser.next() else { return XCTFail("expected the request") }
        XCTAssertEqual(request.body, b("abcd"))
        XCTAssertFalse(parser.awaitsContinue, "the next request starts fresh")
    }

    func testNoContinueForOtherExpectationsOrHTTP10() {
        for head in ["POST /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                     "POST /u HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 4\r\n\r\n",
                     "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"] {
            var parser = HTTPParser()
            parser.append(b(head))
            XCTAssertEqual(parser.next(), .needMoreData)
            XCTAssertFalse(parser.awaitsContinue, head)
        }
    }
}
