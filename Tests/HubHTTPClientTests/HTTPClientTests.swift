// HTTPClient against Python's http.server over plain TCP: framing, request building, limits,
// early close, timeout, cancellation, connect failures.

import Foundation
import HubHTTP
import HubIO
import HubTestSupport
import XCTest
@testable import HubHTTPClient

/// Awaits `body` and returns the HTTPClientError it throws, failing the test if it succeeds.
func clientError(_ body: () async throws(HTTPClientError) -> HTTPClientResponse,
                 file: StaticString = #filePath, line: UInt = #line) async -> HTTPClientError? {
    do {
        let response = try await body()
        XCTFail("expected an error, got status \(response.status) with \(response.body.count) body bytes", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

/// The body the test server's built-in routes send: 'a', 'b', … cycling.
func pattern(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(97 + $0 % 26) } }

final class HTTPClientTests: XCTestCase {
    private var server: PythonHTTPServer!
    private var client: HTTPClient!

    override func setUpWithError() throws {
        server = try PythonHTTPServer()
        client = try HTTPClient()
    }

    override func tearDown() {
        client?.shutdown()
        server?.stop()
    }

    private func url(_ path: String) -> String { server.baseURL() + path }

    // MARK: Framing

    func testContentLengthBody() async throws {
        let response = try await client.get(url("/cl?n=1000"))
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.isSuccess)
        XCTAssertEqual(response.headers["content-length"], "1000")
        XCTAssertEqual(response.body, pattern(1000))
    }

    func testChunkedBody() async throws {
        let response = try await client.get(url("/chunked?n=70000&size=333"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Transfer-Encoding"], "chunked")
        XCTAssertEqual(response.body, pattern(70000))
    }

    func testBodyUntilClose() async throws {
        let response = try await client.get(url("/until-close?n=3000"))
        XCTAssertEqual(response.body, pattern(3000))
    }

    func testHeadHasNoBody() async throws {
        let response = try await client.request(method: .head, url: url("/cl?n=10"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Content-Length"], "10")
        XCTAssertEqual(response.body, [])
    }

    func testNon2xxIsAResponseNotAnError() async throws {
        let response = try await client.get(url("/nowhere"))
        XCTAssertEqual(response.status, 404)
        XCTAssertFalse(response.isSuccess)
        XCTAssertEqual(response.bodyText, #"{"code":"not_found"}"#)
    }

    // MARK: Request building

    func testPostSendsMethodHeadersAndBody() async throws {
        let body = Array(#"{"name":"Acme"}"#.utf8)
        let response = try await client.post(url("/echo?x=1"), headers: ["Content-Type": "application/json", "X-Test": "yes"], body: body)
        XCTAssertEqual(response.status, 200)
        let recorded = try XCTUnwrap(server.recordedRequests().last)
        XCTAssertEqual(recorded.method, "POST")
        XCTAssertEqual(recorded.path, "/echo?x=1")
        XCTAssertEqual(recorded.header("Host"), "127.0.0.1:\(server.port)")
        XCTAssertEqual(recorded.header("Content-Type"), "application/json")
        XCTAssertEqual(recorded.header("X-Test"), "yes")
        XCTAssertEqual(recorded.header("Content-Length"), String(body.count))
        XCTAssertEqual(recorded.header("Connection"), "close")
        XCTAssertEqual(recorded.header("User-Agent"), "DeviceHub-HTTPClient/1")
        XCTAssertEqual(recorded.body, #"{"name":"Acme"}"#)
    }

    func testEmptyPostAnnouncesZeroLengthAndGetDoesNot() async throws {
        _ = try await client.post(url("/echo"), body: [])
        _ = try await client.get(url("/echo"), headers: ["User-Agent": "custom/2"])
        let recorded = try server.recordedRequests()
        XCTAssertEqual(recorded.count, 2)
        XCTAssertEqual(recorded[0].header("Content-Length"), "0")
        XCTAssertNil(recorded[1].header("Content-Length"))
        XCTAssertEqual(recorded[1].header("User-Agent"), "custom/2")
    }

    func testInvalidRequestsAreRefusedBeforeConnecting() async {
        let cases: [(String, HTTPHeaders)] = [
            ("ftp://127.0.0.1/", [:]),
            ("http://", [:]),
            ("http://user:pw@127.0.0.1/", [:]),
            ("http://127.0.0.1:0/", [:]),
            ("http://127.0.0.1:99999/", [:]),
            ("http://exa mple.com/", [:]),
            ("http://127.0.0.1/a b", [:]),
            (url("/echo"), ["X-Bad": "line\r\nInjected: yes"]),
            (url("/echo"), ["Bad Name": "v"]),
            (url("/echo"), ["Content-Length": "5"]),
            (url("/echo"), ["connection": "keep-alive"]),
        ]
        for (target, headers) in cases {
            let error = await clientError { () async throws(HTTPClientError) in try await self.client.get(target, headers: headers) }
            guard case .invalidRequest = error else { return XCTFail("\(target) \(headers): \(String(describing: error))") }
        }
        XCTAssertEqual(try server.recordedRequests().count, 0)
    }

    // MARK: Failures

    func testServerClosingEarlyIsABadResponse() async {
        let error = await clientError { () async throws(HTTPClientError) in try await self.client.get(self.url("/close-early")) }
        guard case .badResponse(let why) = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(why.contains("truncated"), why)
    }

    func testNonHTTPReplyIsABadResponse() async {
        let error = await clientError { () async throws(HTTPClientError) in try await self.client.get(self.url("/garbage")) }
        guard case .badResponse(let why) = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(why.contains("invalid_status_line"), why)
    }

    func testBodyOverTheLimitFailsForEveryFraming() async throws {
        let small = try HTTPClient(configuration: .init(limits: .init(maxBodyBytes: 1000)))
        defer { small.shutdown() }
        let fits = try await small.get(url("/cl?n=1000"))
        XCTAssertEqual(fits.body.count, 1000)
        for path in ["/cl?n=1001", "/chunked?n=1001&size=100", "/until-close?n=1001"] {
            let error = await clientError { () async throws(HTTPClientError) in try await small.get(self.url(path)) }
            XCTAssertEqual(error, .bodyTooLarge(limit: 1000), path)
        }
    }

    func testDefaultBodyLimitIsOneMebibyte() async throws {
        let fits = try await client.get(url("/cl?n=1048576"))
        XCTAssertEqual(fits.body.count, 1 << 20)
        let error = await clientError { () async throws(HTTPClientError) in try await self.client.get(self.url("/chunked?n=1048577&size=65536")) }
        XCTAssertEqual(error, .bodyTooLarge(limit: 1 << 20))
    }

    func testTimeoutCoversTheWholeExchange() async {
        let start = ContinuousClock.now
        let error = await clientError { () async throws(HTTPClientError) in
            try await self.client.get(self.url("/slow?seconds=5"), timeout: .milliseconds(300))
        }
        XCTAssertEqual(error, .timeout)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
    }

    func testCancellationEndsTheRequest() async {
        let client = self.client!
        let target = url("/slow?seconds=5")
        let task = Task { () async throws(HTTPClientError) -> HTTPClientResponse in try await client.get(target) }
        try? await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        task.cancel()
        let result = await task.result
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
        guard case .failure(let error) = result, error as? HTTPClientError == .cancelled else { return XCTFail("\(result)") }
    }

    func testConnectionRefused() async throws {
        let closed = try PythonHTTPServer()
        let port = closed.port
        closed.stop()
        let error = await clientError { () async throws(HTTPClientError) in try await self.client.get("http://127.0.0.1:\(port)/") }
        guard case .connectFailed(let why) = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(why.contains("127.0.0.1:\(port)"), why)
    }

    func testUnresolvableHost() async {
        // .invalid never resolves (RFC 6761); without a reachable DNS server the resolver may
        // instead run into the deadline, which is an acceptable outcome too.
        let error = await clientError { () async throws(HTTPClientError) in
            try await self.client.get("http://no-such-host.invalid/", timeout: .seconds(5))
        }
        switch error {
        case .connectFailed?, .timeout?: break
        default: XCTFail("\(String(describing: error))")
        }
    }

    // MARK: Connections and loops

    func testLocalhostTriesEveryResolvedAddress() async throws {
        // The server listens on 127.0.0.1 only; localhost may resolve to ::1 first.
        let response = try await client.get(server.baseURL(host: "localhost") + "/cl?n=3")
        XCTAssertEqual(response.body, pattern(3))
        XCTAssertEqual(try server.recordedRequests().last?.header("Host"), "localhost:\(server.port)")
    }

    func testConcurrentRequests() async throws {
        let client = self.client!
        let base = server.baseURL()
        let bodies = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for i in 1...12 {
                group.addTask { (i, try await client.get("\(base)/chunked?n=\(i * 1000)&size=500").body) }
            }
            var all: [Int: [UInt8]] = [:]
            for try await (i, body) in group { all[i] = body }
            return all
        }
        for i in 1...12 { XCTAssertEqual(bodies[i], pattern(i * 1000), "request \(i)") }
    }

    func testClientOnACallerOwnedLoop() async throws {
        let group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
        defer { group.stopAndJoin() }
        let onLoop = try HTTPClient(eventLoop: group.loops[0])
        let first = try await onLoop.get(url("/cl?n=5"))
        XCTAssertEqual(first.body, pattern(5))
        onLoop.shutdown()   // does not stop a loop it does not own
        let second = try await HTTPClient(eventLoop: group.loops[0]).get(url("/cl?n=6"))
        XCTAssertEqual(second.body, pattern(6))
    }

    func testShutdownFailsRequestsInFlight() async {
        let client = self.client!
        let target = url("/slow?seconds=5")
        let task = Task { () async throws(HTTPClientError) -> HTTPClientResponse in try await client.get(target) }
        try? await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        client.shutdown()
        let result = await task.result
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
        guard case .failure(let error) = result, error as? HTTPClientError == .shutdown else { return XCTFail("\(result)") }
    }

    func testRequestsAfterShutdownFail() async {
        client.shutdown()
        let error = await clientError { () async throws(HTTPClientError) in try await self.client.get(self.url("/cl")) }
        XCTAssertEqual(error, .shutdown)
    }
}
