// URL decomposition and request encoding (no network).

import HubHTTP
import XCTest
@testable import HubHTTPClient

final class HTTPClientURLTests: XCTestCase {
    func testURLParts() throws {
        let cases: [(String, Bool, String, Int, String, String)] = [
            ("http://example.com", false, "example.com", 80, "/", "example.com"),
            ("https://example.com/auth/v1/.well-known/jwks.json", true, "example.com", 443, "/auth/v1/.well-known/jwks.json", "example.com"),
            ("HTTPS://Example.com:8443/a?b=c#frag", true, "Example.com", 8443, "/a?b=c", "Example.com:8443"),
            ("http://127.0.0.1:8080/api/v1/admin/orgs", false, "127.0.0.1", 8080, "/api/v1/admin/orgs", "127.0.0.1:8080"),
            ("http://[::1]:9000?x=1", false, "::1", 9000, "/?x=1", "[::1]:9000"),
            ("https://[2001:db8::1]/", true, "2001:db8::1", 443, "/", "[2001:db8::1]"),
            ("http://host:80/", false, "host", 80, "/", "host"),
        ]
        for (text, tls, host, port, target, hostField) in cases {
            let url = try HTTPClientURL(text)
            XCTAssertEqual(url.isTLS, tls, text)
            XCTAssertEqual(url.host, host, text)
            XCTAssertEqual(url.port, port, text)
            XCTAssertEqual(url.target, target, text)
            XCTAssertEqual(url.hostField, hostField, text)
        }
    }

    func testMalformedURLs() {
        for text in ["", "example.com", "ws://x/", "http://", "http:///path", "http://:80/", "http://[::1", "http://[::1]x/",
                     "http://[zz]/", "http://a@b/", "http://h:/", "http://h:abc/", "http://h:65536/", "http://h_ost%/"] {
            XCTAssertThrowsError(try HTTPClientURL(text), text)
        }
    }

    func testRequestEncoding() throws {
        let url = try HTTPClientURL("http://127.0.0.1:8080/api/v1/admin/orgs")
        let bytes = try HTTPClient.encode(method: .post, url: url, headers: ["Authorization": "Bearer t", "Content-Type": "application/json"],
                                          body: Array("{}".utf8), userAgent: "ua/1")
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "POST /api/v1/admin/orgs HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            + "Authorization: Bearer t\r\nContent-Type: application/json\r\nUser-Agent: ua/1\r\nContent-Length: 2\r\n"
            + "Connection: close\r\n\r\n{}")
        let get = try HTTPClient.encode(method: .get, url: url, headers: [:], body: [], userAgent: "ua/1")
        XCTAssertEqual(String(decoding: get, as: UTF8.self), "GET /api/v1/admin/orgs HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ua/1\r\nConnection: close\r\n\r\n")
    }

    func testRequestEncoderRefusesWhatItCannotSendSafely() {
        XCTAssertThrowsError(try HTTPRequestEncoder.encode(method: .other("BAD METHOD"), target: "/", headers: [:], body: []))
        XCTAssertThrowsError(try HTTPRequestEncoder.encode(method: .get, target: "", headers: [:], body: []))
        XCTAssertThrowsError(try HTTPRequestEncoder.encode(method: .get, target: "/caf\u{e9}", headers: [:], body: []))
        XCTAssertThrowsError(try HTTPRequestEncoder.encode(method: .get, target: "/", headers: ["A": "b\nc"], body: []))
        XCTAssertThrowsError(try HTTPRequestEncoder.encode(method: .get, target: "/", headers: ["A:": "b"], body: []))
        XCTAssertThrowsError(try HTTPRequestEncoder.encode(method: .get, target: "/", headers: ["": "b"], body: []))
        XCTAssertNoThrow(try HTTPRequestEncoder.encode(method: .get, target: "/", headers: ["A": "tab\tand obs-text \u{e9}"], body: []))
    }

    func testDurationConversion() {
        XCTAssertEqual(HTTPClient.nanoseconds(.seconds(2)), 2_000_000_000)
        XCTAssertEqual(HTTPClient.nanoseconds(.milliseconds(1500)), 1_500_000_000)
        XCTAssertEqual(HTTPClient.nanoseconds(.zero), 1)
        XCTAssertEqual(HTTPClient.nanoseconds(.seconds(-3)), 1)
        XCTAssertEqual(HTTPClient.nanoseconds(.seconds(Int64.max)), UInt64.max / 2)
    }
}
