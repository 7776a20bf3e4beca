// The opening handshake: Sec-WebSocket-Accept (RFC 6455 §1.3 example), request validation and
// every rejection, subprotocols, origins, extensions, and the client helper against the server.

import XCTest
@testable import HubWebSocket

final class HandshakeTests: XCTestCase {
    let key = "dGhlIHNhbXBsZSBub25jZQ=="

    func request(_ extra: [(String, String)] = [], without: Set<String> = []) -> [(name: String, value: String)] {
        let base: [(String, String)] = [
            ("Host", "hub.example"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
        ]
        return (base.filter { !without.contains($0.0.lowercased()) } + extra).map { (name: $0.0, value: $0.1) }
    }

    func rejection(_ headers: [(name: String, value: String)], _ policy: HandshakePolicy = HandshakePolicy()) -> HandshakeRejection? {
        if case .failure(let r) = WebSocketHandshake.validate(headers: headers, policy: policy) { return r }
        return nil
    }

    func accept(_ headers: [(name: String, value: String)], _ policy: HandshakePolicy = HandshakePolicy()) -> HandshakeAccept? {
        try? WebSocketHandshake.validate(headers: headers, policy: policy).get()
    }

    func header(_ name: String, in accept: HandshakeAccept?) -> String? {
        accept?.responseHeaders.first { $0.name == name }?.value
    }

    func testAcceptValueFromTheRFC() {
        XCTAssertEqual(WebSocketHandshake.acceptValue(forKey: key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testBase64() {
        for n in 0..<20 {
            let b = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 1) }
            XCTAssertEqual(Base64.decode(Base64.encode(b)), b)
        }
        XCTAssertEqual(Base64.encode(Array("foobar".utf8)), "Zm9vYmFy")
        XCTAssertEqual(Base64.encode(Array("fo".utf8)), "Zm8=")
        XCTAssertNil(Base64.decode("Zm9"))
        XCTAssertNil(Base64.decode("Zm=v"))
        XCTAssertNil(Base64.decode("Zm9v!A=="))
    }

    func testValidRequest() {
        let a = accept(request())
        XCTAssertEqual(a?.responseHeaders.map { $0.name }, ["Upgrade", "Connection", "Sec-WebSocket-Accept"])
        XCTAssertEqual(header("Sec-WebSocket-Accept", in: a), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertNil(a?.subprotocol)
        XCTAssertNil(a?.deflate)
        // Token lists and case: "keep-alive, Upgrade", "WebSocket".
        let b = accept(request([("connection", "keep-alive, upgrade")], without: ["connection", "upgrade"]) + [(name: "UPGRADE", value: "WebSocket")])
        XCTAssertNotNil(b)
    }

    func testRejections() {
        XCTAssertEqual(rejection(request(without: ["upgrade"]))?.code, "websocket_upgrade_missing")
        XCTAssertEqual(rejection(request([("Upgrade", "h2c")], without: ["upgrade"]))?.status, 400)
        XCTAssertEqual(rejection(request(without: ["connection"]))?.code, "websocket_connection_missing")
        XCTAssertEqual(rejection(request([("Connection", "keep-alive")], without: ["connection"]))?.code, "websocket_connection_missing")
        for version in [nil, "8", "13, 8", "14"] as [String?] {
            var headers = request(without: ["sec-websocket-version"])
            if let version { headers.append((name: "Sec-WebSocket-Version", value: version)) }
            let r = rejection(headers)
            XCTAssertEqual(r?.status, 426, "\(String(describing: version))")
            XCTAssertEqual(r?.code, "websocket_version_unsupported")
            XCTAssertEqual(r?.headers.first?.name, "Sec-WebSocket-Version")
            XCTAssertEqual(r?.headers.first?.value, "13")
        }
        for badKey in ["", "abc", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==AAAA",
                       "dGhlIHNhbXBsZSBub25j!Q==", "AAAAAAAAAAAAAAAAAAAAAAAA"] {
            XCTAssertEqual(rejection(request([("Sec-WebSocket-Key", badKey)], without: ["sec-websocket-key"]))?.code,
                           "websocket_key_invalid", badKey)
        }
        XCTAssertEqual(rejection(request(without: ["sec-websocket-key"]))?.code, "websocket_key_invalid")
        XCTAssertEqual(rejection(request([("Sec-WebSocket-Key", key)]))?.code, "websocket_key_invalid")     // two keys
        for (code, status) in HandshakeRejection.catalogue { XCTAssertTrue([400, 403, 426].contains(status), code) }
    }

    func testOrigin() {
        let policy = HandshakePolicy(allowedOrigins: ["https://portal.example"])
        XCTAssertNotNil(accept(request(), policy))                                           // no Origin: a device
        XCTAssertNotNil(accept(request([("Origin", "HTTPS://Portal.Example")]), policy))
        let r = rejection(request([("Origin", "https://evil.example")]), policy)
        XCTAssertEqual(r?.status, 403)
        XCTAssertEqual(r?.code, "websocket_origin_forbidden")
        XCTAssertNotNil(accept(request([("Origin", "https://anything.example")])))          // no allow-list
    }

    func testSubprotocol() {
        let policy = HandshakePolicy(subprotocols: ["devicehub.v2", "devicehub.v1"])
        let a = accept(request([("Sec-WebSocket-Protocol", "mqtt, devicehub.v1"), ("Sec-WebSocket-Protocol", "devicehub.v2")]), policy)
        XCTAssertEqual(a?.subprotocol, "devicehub.v1")                                       // client's order decides
        XCTAssertEqual(header("Sec-WebSocket-Protocol", in: a), "devicehub.v1")
        XCTAssertNil(accept(request([("Sec-WebSocket-Protocol", "mqtt")]), policy)?.subprotocol)
        var strict = policy
        strict.requireSubprotocol = true
        XCTAssertEqual(rejection(request([("Sec-WebSocket-Protocol", "mqtt")]), strict)?.code, "websocket_subprotocol_unsupported")
    }

    func testExtensions() {
        let a = accept(request([("Sec-WebSocket-Extensions", "x-unknown, permessage-deflate; client_max_window_bits")]))
        XCTAssertEqual(header("Sec-WebSocket-Extensions", in: a), "permessage-deflate")
        XCTAssertEqual(a?.deflate, PerMessageDeflate.Parameters())
        var off = HandshakePolicy()
        off.deflate = nil
        let b = accept(request([("Sec-WebSocket-Extensions", "permessage-deflate")]), off)
        XCTAssertNil(b?.deflate)
        XCTAssertNil(header("Sec-WebSocket-Extensions", in: b))
    }

    func testClientHandshakeAgainstServer() {
        let client = WebSocketClientHandshake(subprotocols: ["devicehub.v1"],
                                              deflate: PerMessageDeflate.Parameters(clientNoContextTakeover: true))
        XCTAssertTrue(WebSocketHandshake.isValidKey(client.key))
        XCTAssertNotEqual(client.key, WebSocketClientHandshake().key)                        // fresh per attempt
        let requestHeaders = client.requestHeaders(host: "hub.example:8080", origin: "https://portal.example")
        let server = accept(requestHeaders, HandshakePolicy(subprotocols: ["devicehub.v1"], allowedOrigins: ["https://portal.example"]))
        XCTAssertNotNil(server)
        let result = try? client.validateResponse(status: 101, headers: server!.responseHeaders).get()
        XCTAssertEqual(result?.subprotocol, "devicehub.v1")
        XCTAssertEqual(result?.deflate, server?.deflate)
        XCTAssertEqual(result?.deflate?.clientNoContextTakeover, true)
        // Each failure a client must detect.
        var headers = server!.responseHeaders
        XCTAssertThrowsError(try client.validateResponse(status: 200, headers: headers).get())
        headers[2].value = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        XCTAssertThrowsError(try client.validateResponse(status: 101, headers: headers).get())
        headers = server!.responseHeaders.filter { $0.name != "Upgrade" }
        XCTAssertThrowsError(try client.validateResponse(status: 101, headers: headers).get())
        headers = server!.responseHeaders.map { $0.name == "Sec-WebSocket-Protocol" ? (name: $0.name, value: "other") : $0 }
        XCTAssertThrowsError(try client.validateResponse(status: 101, headers: headers).get())
        let noDeflate = WebSocketClientHandshake(key: client.key, deflate: nil)
        XCTAssertThrowsError(try noDeflate.validateResponse(status: 101, headers: server!.responseHeaders.filter {
            $0.name != "Sec-WebSocket-Protocol" }).get())
    }
}

final class ClientRequestTests: XCTestCase {
    func testRequestBytesAndResponseHead() {
        let request = WebSocketHandshake.clientRequest(host: "hub.example:8080", path: "/agent ws\r\nX: y", subprotocols: ["v1"],
                                                       offerDeflate: true,
                                                       extraHeaders: [("Authorization", "Bearer t"), ("Bad\r\nName", "x"),
                                                                      ("X-Evil", "a\r\nInjected: 1"), ("Upgrade", "h2c")],
                                                       key: "dGhlIHNhbXBsZSBub25jZQ==")
        let text = String(decoding: request.bytes, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("GET /agent%20ws%0D%0AX:%20y HTTP/1.1\r\nHost: hub.example:8080\r\nUpgrade: websocket\r\n"), text)
        XCTAssertTrue(text.contains("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
        XCTAssertTrue(text.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
        XCTAssertTrue(text.contains("\r\nAuthorization: Bearer t\r\n"))
        XCTAssertFalse(text.contains("Injected"))
        XCTAssertFalse(text.contains("h2c"))
        XCTAssertTrue(text.hasSuffix("\r\n\r\n"))
        XCTAssertEqual(text.components(separatedBy: "\r\n").filter { $0.isEmpty }.count, 2)   // only the final blank line

        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v1\r\n"
            + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"
        let accepted = try? WebSocketHandshake.verifyResponse(head: Array(head.utf8), request: request).get()
        XCTAssertEqual(accepted?.subprotocol, "v1")
        XCTAssertEqual(accepted?.deflate, PerMessageDeflate.Parameters(serverNoContextTakeover: true))
        XCTAssertNotNil(try? WebSocketHandshake.verifyResponse(head: Array((head + "\r\n\r\n").utf8), request: request).get())
        for bad in [head.replacingOccurrences(of: "101", with: "200"), head.replacingOccurrences(of: "HTTP/1.1", with: "HTTP/1.0"),
                    head.replacingOccurrences(of: "s3pP", with: "AAAA"), head + "\r\nno colon here", ""] {
            XCTAssertThrowsError(try WebSocketHandshake.verifyResponse(head: Array(bad.utf8), request: request).get(), bad)
        }
    }
}
