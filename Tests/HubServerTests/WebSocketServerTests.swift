import Foundation
import HubIO
import HubServer
import HubWebSocket
import HubWebSocketIO
import XCTest

/// The WebSocket engine end to end over loopback, cross-checked with independent
/// implementations: python-websockets and wsproto as clients of our server, python-websockets
/// as the server for our client.
final class WebSocketServerTests: XCTestCase {
    final class Echo: WebSocketDelegate {
        func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) { ws.send(.text, payload: text) }
        func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) { ws.send(.binary, payload: binary) }
    }

    /// Records what the server side saw.
    final class Recorder: WebSocketDelegate, @unchecked Sendable {
        let lock = NSLock()
        var closes: [UInt16?] = []
        var opened: [WebSocketConnection] = []
        func webSocketOpened(_ ws: WebSocketConnection) { lock.lock(); opened.append(ws); lock.unlock() }
        func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {}
        func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
            lock.lock(); closes.append(code?.rawValue); lock.unlock()
        }
        var closeCodes: [UInt16?] { lock.lock(); defer { lock.unlock() }; return closes }
    }

    var server: HubServer!
    let recorder = Recorder()
    var settings = WebSocketSettings()

    override func setUpWithError() throws {
        settings.sendHardLimit = 256 * 1024
        settings.sendSoftLimit = 64 * 1024
        let s = settings, rec = recorder
        (server, _) = try startTestServer { app in
            var policy = HandshakePolicy()
            policy.allowedOrigins = ["https://portal.example"]
            app.route(.get, "/echo") { ctx, responder in
                responder.send(WebSocketUpgrade.respond(to: ctx, policy: policy, settings: s) { _ in Echo() })
            }
            app.route(.get, "/record") { ctx, responder in
                responder.send(WebSocketUpgrade.respond(to: ctx, policy: policy, settings: s) { _ in rec })
            }
        }
    }

    override func tearDown() { server.stopNow() }

    func testPythonWebsocketsClientEchoesWithAndWithoutDeflate() throws {
        for deflate in [false, true] {
            let r = try PythonPeer.run("ws_client_echo.py", ["ws://127.0.0.1:\(server.httpPort)/echo"] + (deflate ? ["--deflate"] : []))
            XCTAssertEqual(r.status, 0, r.out + r.err)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            XCTAssertEqual(json["ok"] as? Bool, true)
            XCTAssertEqual(json["close_code"] as? Int, 1000)
            let ext = json["extensions"] as? String
            if deflate { XCTAssertTrue(ext?.hasPrefix("permessage-deflate") == true, "\(String(describing: ext))") } else { XCTAssertNil(ext) }
        }
    }

    func testWsprotoClientEchoesWithAndWithoutDeflate() throws {
        for deflate in [false, true] {
            let r = try PythonPeer.run("wsproto_client_echo.py", ["127.0.0.1", "\(server.httpPort)", "/echo"] + (deflate ? ["--deflate"] : []))
            XCTAssertEqual(r.status, 0, r.out + r.err)
            XCTAssertTrue(r.out.contains("\"ok\": true"), r.out)
            if deflate { XCTAssertTrue(r.out.contains("permessage-deflate"), r.out) }
        }
    }

    func testOurClientAgainstPythonWebsocketsAndWsprotoServers() throws {
        for (script, deflate) in [("ws_server_echo.py", false), ("ws_server_echo.py", true),
                                  ("wsproto_server_echo.py", false), ("wsproto_server_echo.py", true)] {
            let (peer, port) = try PythonPeer.start(script, deflate ? ["--deflate"] : [])
            defer { peer.terminate() }
            let group = try EventLoopGroup(count: 1, registry: nil)
            group.start()
            defer { group.stopAndJoin() }
            final class Collector: WebSocketDelegate, @unchecked Sendable {
                var got: [String] = []
                let done = DispatchSemaphore(value: 0)
                let expected: Int
                init(expected: Int) { self.expected = expected }
                func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
                    got.append(String(decoding: text, as: UTF8.self))
                    if got.count == expected { done.signal() }
                }
            }
            let messages = ["hello", "κόσμε", String(repeating: "compressible ", count: 5000)]
            let collector = Collector(expected: messages.count)
            var options = WebSocketClient.Options(host: "127.0.0.1", port: port)
            options.offerDeflate = deflate
            let opened = DispatchSemaphore(value: 0)
            final class Box: @unchecked Sendable { var ws: WebSocketConnection?; var error: Error? }
            let box = Box()
            group.loops[0].execute {
                WebSocketClient.connect(options, on: group.loops[0], makeDelegate: { _ in collector }) { result in
                    switch result {
                    case .success(let ws):
                        box.ws = ws
                        for m in messages { ws.send(text: m) }
                    case .failure(let e): box.error = e
                    }
                    opened.signal()
                }
            }
            XCTAssertEqual(opened.wait(timeout: .now() + 5), .success)
            XCTAssertNil(box.error)
            XCTAssertEqual(collector.done.wait(timeout: .now() + 5), .success)
            XCTAssertEqual(collector.got, messages)
            XCTAssertEqual(box.ws?.deflate != nil, deflate, script)
        }
    }

    /// A sender that pauses at `.backpressure` hears `webSocketWritable` once its output is out,
    /// also when the kernel took the whole burst in one flush (nothing ever blocked): without
    /// that, a producer paused on the soft limit would wait forever.
    func testBackpressureIsAlwaysFollowedByWritable() throws {
        let (peer, port) = try PythonPeer.start("ws_server_echo.py", [])
        defer { peer.terminate() }
        let group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
        defer { group.stopAndJoin() }
        final class Producer: WebSocketDelegate, @unchecked Sendable {
            // Loop thread only, except the semaphores and the reads after `done`.
            var left = 40
            var pauses = 0, writables = 0, echoes = 0
            let done = DispatchSemaphore(value: 0)
            let chunk = String(repeating: "x", count: 4096)
            func pump(_ ws: WebSocketConnection) {
                while left > 0 {
                    left -= 1
                    if ws.send(text: chunk) == .backpressure {
                        pauses += 1
                        return
                    }
                }
            }
            func webSocketWritable(_ ws: WebSocketConnection) {
                writables += 1
                pump(ws)
            }
            func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
                echoes += 1
                if echoes == 40 { done.signal() }
            }
        }
        let producer = Producer()
        var options = WebSocketClient.Options(host: "127.0.0.1", port: port)
        // A soft limit of two messages: the 40 messages pause many times.
        options.settings.sendSoftLimit = 8192
        group.loops[0].execute {
            WebSocketClient.connect(options, on: group.loops[0], makeDelegate: { _ in producer }) { result in
                if case .success(let ws) = result { producer.pump(ws) }
            }
        }
        XCTAssertEqual(producer.done.wait(timeout: .now() + 10), .success, "paused \(producer.pauses) times, resumed \(producer.writables)")
        XCTAssertGreaterThan(producer.pauses, 1)
        XCTAssertEqual(producer.writables, producer.pauses, "every pause is followed by writable")
    }

    /// Our client over TLS (wss://) against python-websockets with Python's ssl module: the
    /// echo works when the server's certificate verifies (by IP address SAN), and the connect
    /// fails when it does not (a certificate from another issuer).
    func testOurClientOverTLSVerifiesTheServer() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("devicehub-wss-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["server", "other"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                           "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", dir.appendingPathComponent("\(name)-key.pem").path, "-out", dir.appendingPathComponent("\(name).pem").path]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "openssl req failed")
        }
        let (peer, port) = try PythonPeer.start("ws_server_echo.py", ["--tls", dir.appendingPathComponent("server.pem").path,
                                                                     dir.appendingPathComponent("server-key.pem").path])
        defer { peer.terminate() }
        let group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
        defer { group.stopAndJoin() }

        final class Collector: WebSocketDelegate, @unchecked Sendable {
            var got: [String] = []
            let done = DispatchSemaphore(value: 0)
            func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
                got.append(String(decoding: text, as: UTF8.self))
                if got.count == 2 { done.signal() }
            }
        }
        final class Box: @unchecked Sendable { var ws: WebSocketConnection?; var error: Error? }
        func connect(trusting ca: String, _ collector: Collector) throws -> Box {
            var options = WebSocketClient.Options(host: "127.0.0.1", port: port)
            options.tls = try TLSContext.client(verifyPeer: true, caFile: dir.appendingPathComponent(ca).path)
            let box = Box()
            let opened = DispatchSemaphore(value: 0)
            group.loops[0].execute {
                WebSocketClient.connect(options, on: group.loops[0], makeDelegate: { _ in collector }) { result in
                    switch result {
                    case .success(let ws):
                        box.ws = ws
                        ws.send(text: "over tls")
                        ws.send(text: String(repeating: "x", count: 100_000))
                    case .failure(let e): box.error = e
                    }
                    opened.signal()
                }
            }
            XCTAssertEqual(opened.wait(timeout: .now() + 5), .success)
            return box
        }

        let trusted = Collector()
        let ok = try connect(trusting: "server.pem", trusted)
        XCTAssertNil(ok.error)
        XCTAssertEqual(trusted.done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(trusted.got, ["over tls", String(repeating: "x", count: 100_000)])

        let refused = try connect(trusting: "other.pem", Collector())
        XCTAssertNotNil(refused.error, "a certificate from an untrusted issuer must fail the connect")
        XCTAssertNil(refused.ws)
    }

    func testHandshakeRejectionsAreProblemJSON() throws {
        let c = try TestClient(port: server.httpPort)
        let base = ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="]
        var v8 = base; v8["Sec-WebSocket-Version"] = "8"
        let r426 = try c.request("GET", "/echo", headers: v8)
        XCTAssertEqual(r426.status, 426)
        XCTAssertEqual(r426.header("Sec-WebSocket-Version"), "13")
        XCTAssertEqual(r426.header("Content-Type"), "application/problem+json")
        var badKey = base; badKey["Sec-WebSocket-Version"] = "13"; badKey["Sec-WebSocket-Key"] = "short"
        XCTAssertEqual(try c.request("GET", "/echo", headers: badKey).status, 400)
        var foreign = base; foreign["Sec-WebSocket-Version"] = "13"; foreign["Origin"] = "https://evil.example"
        XCTAssertEqual(try c.request("GET", "/echo", headers: foreign).status, 403)
        // The connection is still good HTTP after refused upgrades.
        XCTAssertEqual(try c.request("GET", "/healthz").status, 200)
    }

    func testUpgradeAnswers101WithTheRFCAcceptValue() throws {
        let c = try TestClient(port: server.httpPort)
        try c.send("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://portal.example\r\n\r\n")
        let r = try c.readResponse(head: true)
        XCTAssertEqual(r.status, 101)
        // RFC 6455 §1.3's example.
        XCTAssertEqual(r.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertEqual(r.header("Upgrade")?.lowercased(), "websocket")
        // A masked "Hi" text frame: echoed unmasked.
        try c.send([0x81, 0x82, 1, 2, 3, 4, UInt8(ascii: "H") ^ 1, UInt8(ascii: "i") ^ 2])
        var frame = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(recv(c.fd, &frame, 4, Int32(MSG_WAITALL)), 4)
        XCTAssertEqual(frame, [0x81, 0x02, UInt8(ascii: "H"), UInt8(ascii: "i")])
    }

    func testDrainClosesWebSocketsWith1001() throws {
        let c = try TestClient(port: server.httpPort)
        try c.send("GET /record HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertEqual(try c.readResponse(head: true).status, 101)
        Thread.detachNewThread { self.server.drain(gracePeriod: 1) }
        var frame = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(recv(c.fd, &frame, 4, Int32(MSG_WAITALL)), 4)
        XCTAssertEqual(frame[0], 0x88, "a close frame")
        XCTAssertEqual(UInt16(frame[2]) << 8 | UInt16(frame[3]), 1001)
    }

    func testSlowConsumerIsClosedWith4008() throws {
        let c = try TestClient(port: server.httpPort)
        var size: Int32 = 4096
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        try c.send("GET /record HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertEqual(try c.readResponse(head: true).status, 101)
        usleep(100_000)
        let ws = try XCTUnwrap(recorder.opened.first)
        let payload = [UInt8](repeating: 0x61, count: 16 * 1024)
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var results: [WebSocketConnection.SendResult] = [] }
        let box = Box()
        ws.channel.loop.execute {
            // The client never reads: the queue passes the soft limit, then the hard one.
            for _ in 0..<200 { payload.withUnsafeBytes { box.results.append(ws.send(.binary, payload: $0)) } }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertTrue(box.results.contains { if case .backpressure = $0 { return true }; return false }, "soft limit reported")
        XCTAssertTrue(box.results.contains { if case .dropped = $0 { return true }; return false }, "hard limit closes")
        usleep(100_000)
        XCTAssertEqual(recorder.closeCodes, [4008])
    }
}
