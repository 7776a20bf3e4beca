import Foundation
import HubHTTP
import HubIO
import HubServer
import XCTest

/// The HTTP server over loopback: keep-alive, pipelining, errors, request ids, routing.
final class HTTPServerTests: XCTestCase {
    var server: HubServer!
    var port: Int { server.httpPort }

    override func setUpWithError() throws {
        (server, _) = try startTestServer({ $0.requestHeadTimeout = 0.6; $0.keepAliveTimeout = 1.5 }) { app in
            app.route(.post, "/echo") { ctx, responder in
                var r = Response(status: 200, body: ctx.request.body)
                r.headers.add(name: "Content-Type", value: "application/octet-stream")
                responder.send(r)
            }
            app.route(.get, "/things/:id") { ctx, responder in
                responder.send(.json(["id": ctx.params["id"] ?? ""]))
            }
            // Answers later, from the loop's timer: the pipeline must still come out in order.
            app.route(.get, "/slow") { ctx, responder in
                ctx.loop.schedule(after: 100_000_000) { responder.send(.text("slow")) }
            }
        }
    }

    override func tearDown() {
        server.stopNow()
    }

    func testKeepAliveServesManyRequestsOnOneConnection() throws {
        let c = try TestClient(port: port)
        for i in 0..<20 {
            let r = try c.request("GET", "/things/\(i)")
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.json?["id"] as? String, "\(i)")
            XCTAssertNil(r.header("Connection"), "keep-alive is the HTTP/1.1 default; no Connection header expected")
        }
    }

    func testPipelinedRequestsAnsweredInOrderEvenWhenTheFirstIsSlow() throws {
        let c = try TestClient(port: port)
        try c.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Request-ID: one\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nX-Request-ID: two\r\nContent-Length: 5\r\n\r\nhelloGET /things/7 HTTP/1.1\r\nHost: x\r\nX-Request-ID: three\r\n\r\n")
        let r1 = try c.readResponse(), r2 = try c.readResponse(), r3 = try c.readResponse()
        XCTAssertEqual([r1, r2, r3].map { $0.header("X-Request-ID") }, ["one", "two", "three"])
        XCTAssertEqual(r1.text, "slow")
        XCTAssertEqual(r2.text, "hello")
        XCTAssertEqual(r3.json?["id"] as? String, "7")
    }

    func testExpectContinueGetsTheInterimResponseBeforeTheBody() throws {
        let c = try TestClient(port: port)
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        // The client sends nothing more until it has the 100 (curl would wait 1 s otherwise).
        XCTAssertEqual(try c.readResponse().status, 100)
        try c.send("he")
        try c.send("llo")
        let final = try c.readResponse()
        XCTAssertEqual(final.status, 200)
        XCTAssertEqual(final.text, "hello")
        // One 100 per request: the next one on the same connection gets its own.
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        XCTAssertEqual(try c.readResponse().status, 100)
        try c.send("ok")
        XCTAssertEqual(try c.readResponse().text, "ok")
    }

    func testExpectContinueWithATooLargeBodyGets413NotContinue() throws {
        let c = try TestClient(port: port)
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 999999999999\r\n\r\n")
        XCTAssertEqual(try c.readResponse().status, 413)
    }

    func testChunkedBodyIsDecoded() throws {
        let c = try TestClient(port: port)
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        XCTAssertEqual(try c.readResponse().text, "hello world")
    }

    func testMalformedRequestGetsProblemJSONAndClose() throws {
        let cases: [(String, Int, String)] = [
            ("GET / HTTP/1.1\nHost: x\n\n", 400, "bare_lf"),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http_version_not_supported"),
            ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n", 414, "uri_too_long"),
        ]
        for (raw, status, code) in cases {
            let c = try TestClient(port: port)
            try c.send(raw)
            let r = try c.readResponse()
            XCTAssertEqual(r.status, status, raw.prefix(40).debugDescription)
            XCTAssertEqual(r.header("Content-Type"), "application/problem+json")
            XCTAssertEqual(r.header("Connection"), "close")
            let json = try XCTUnwrap(r.json)
            if !code.isEmpty { XCTAssertEqual(json["code"] as? String, code) }
            XCTAssertEqual(json["status"] as? Int, status)
            XCTAssertNotNil(json["request_id"] as? String)
            XCTAssertTrue(c.waitForClose(), "connection must close after a parse error")
        }
    }

    func testNotFoundAndMethodNotAllowed() throws {
        let c = try TestClient(port: port)
        let r404 = try c.request("GET", "/nope")
        XCTAssertEqual(r404.status, 404)
        XCTAssertEqual(r404.json?["code"] as? String, "not_found")
        let r405 = try c.request("DELETE", "/healthz")
        XCTAssertEqual(r405.status, 405)
        XCTAssertEqual(r405.header("Allow"), "GET, HEAD")
        let head = try c.request("HEAD", "/healthz")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body.count, 0)
        XCTAssertEqual(head.header("Content-Length"), "15")
    }

    func testRequestIDIsEchoedWhenSaneAndGeneratedOtherwise() throws {
        let c = try TestClient(port: port)
        XCTAssertEqual(try c.request("GET", "/healthz", headers: ["X-Request-ID": "abc-123.x:y/z"]).header("X-Request-ID"), "abc-123.x:y/z")
        let replaced = try c.request("GET", "/healthz", headers: ["X-Request-ID": "bad id with spaces"]).header("X-Request-ID")
        XCTAssertNotNil(replaced)
        XCTAssertNotEqual(replaced, "bad id with spaces")
        let a = try c.request("GET", "/healthz").header("X-Request-ID"), b = try c.request("GET", "/healthz").header("X-Request-ID")
        XCTAssertNotEqual(a, b)
    }

    func testSlowlorisHeadIsCutOffWith408() throws {
        let c = try TestClient(port: port)
        try c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")
        let start = Date()
        for _ in 0..<3 { usleep(150_000); try? c.send("X-Drip: 1\r\n") }
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertEqual(r.json?["code"] as? String, "request_timeout")
        XCTAssertTrue(c.waitForClose())
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        let c = try TestClient(port: port)
        XCTAssertEqual(try c.request("GET", "/healthz").status, 200)
        let start = Date()
        XCTAssertTrue(c.waitForClose())
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 1.2)
    }

    func testOneThousandConcurrentConnections() throws {
        _ = raiseFileDescriptorLimit()
        var clients: [TestClient] = []
        for _ in 0..<1000 { clients.append(try TestClient(port: port, timeout: 10)) }
        for (i, c) in clients.enumerated() { try c.send("GET /things/\(i) HTTP/1.1\r\nHost: x\r\n\r\n") }
        for (i, c) in clients.enumerated() {
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.json?["id"] as? String, "\(i)")
        }
        // All 1,000 were open at once on the server side.
        XCTAssertGreaterThanOrEqual(server.openConnections(), 1000)
    }

    func testMetricsCountRequestsByRouteAndStatus() throws {
        let c = try TestClient(port: port)
        for _ in 0..<3 { _ = try c.request("GET", "/things/1") }
        _ = try c.request("GET", "/missing")
        let text = try c.request("GET", "/metrics").text
        XCTAssertTrue(text.contains("devicehub_http_requests_total{route=\"/things/:id\",status=\"200\"} 3"), text)
        XCTAssertTrue(text.contains("devicehub_http_requests_total{route=\"unmatched\",status=\"404\"} 1"))
        XCTAssertTrue(text.contains("devicehub_http_request_duration_seconds_count{route=\"/things/:id\"} 3"))
        XCTAssertTrue(text.contains("# TYPE devicehub_loop_iteration_seconds histogram"))
        XCTAssertTrue(text.contains("devicehub_connections_open "))
        XCTAssertTrue(text.contains("process_resident_memory_bytes "))
    }

    func testOperationsEndpoints() throws {
        let c = try TestClient(port: port)
        let health = try c.request("GET", "/healthz")
        XCTAssertEqual(health.json?["status"] as? String, "ok")
        let ready = try c.request("GET", "/readyz")
        XCTAssertEqual(ready.status, 200)
        XCTAssertEqual(ready.json?["status"] as? String, "ready")
        let version = try c.request("GET", "/version").json
        XCTAssertEqual(version?["name"] as? String, "devicehub")
        XCTAssertNotNil(version?["git_commit"] as? String)
        XCTAssertNotNil(version?["build_time"] as? String)
        let docs = try c.request("GET", "/api/docs")
        XCTAssertEqual(docs.header("Content-Type"), "application/yaml")
        XCTAssertTrue(docs.text.hasPrefix("openapi: 3.1.0"))
        XCTAssertTrue(docs.text.contains("/readyz:"))
    }

    func testReadinessReflectsAFailingCheck() throws {
        final class Flaky: ReadinessCheck, @unchecked Sendable {
            let name = "redis"
            var up = false
            func isReady() -> Bool { up }
        }
        let check = Flaky()
        server.readiness.add(check)
        let c = try TestClient(port: port)
        let down = try c.request("GET", "/readyz")
        XCTAssertEqual(down.status, 503)
        XCTAssertEqual((down.json?["checks"] as? [String: String])?["redis"], "down")
        XCTAssertEqual(down.header("Retry-After"), "5")
        check.up = true
        XCTAssertEqual(try c.request("GET", "/readyz").status, 200)
    }
}
