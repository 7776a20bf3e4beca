// HTTPClient over TLS against Python's http.server with certificates from a throw-away CA:
// chain and host-name verification on by default, an extra trusted CA by configuration.

import Foundation
import HubTestSupport
import XCTest
@testable import HubHTTPClient

final class HTTPClientTLSTests: XCTestCase {
    private var authority: TestCertificateAuthority!
    private var server: PythonHTTPServer!

    override func setUpWithError() throws {
        authority = try TestCertificateAuthority()
        let (certificate, key) = try authority.issueServerCertificate()
        server = try PythonHTTPServer(tlsCertificate: certificate, tlsKey: key)
    }

    override func tearDown() {
        server?.stop()
    }

    private func client(trusting ca: String?) throws -> HTTPClient {
        try HTTPClient(configuration: .init(additionalCAFile: ca))
    }

    func testHTTPSWithTheServersCATrusted() async throws {
        let client = try client(trusting: authority.certificate)
        defer { client.shutdown() }
        let byIP = try await client.get(server.baseURL(tls: true) + "/cl?n=20000")
        XCTAssertEqual(byIP.body, pattern(20000))
        let byName = try await client.post(server.baseURL(tls: true, host: "localhost") + "/echo", body: Array("{}".utf8))
        XCTAssertEqual(byName.status, 200)
        let chunked = try await client.get(server.baseURL(tls: true) + "/chunked?n=100000&size=4096")
        XCTAssertEqual(chunked.body, pattern(100000))
        XCTAssertEqual(try server.recordedRequests().count, 3)
    }

    func testCertificateFromAnUntrustedCAIsRefused() async throws {
        let other = try TestCertificateAuthority(name: "Other CA")
        let client = try client(trusting: other.certificate)
        defer { client.shutdown() }
        let error = await clientError { () async throws(HTTPClientError) in try await client.get(self.server.baseURL(tls: true) + "/cl") }
        guard case .tlsFailed(let why) = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(why.contains("verify"), why)
        XCTAssertEqual(try server.recordedRequests().count, 0, "no request may reach an unverified server")
    }

    func testSystemTrustStoreAloneRefusesAPrivateCA() async throws {
        let client = try client(trusting: nil)
        defer { client.shutdown() }
        let error = await clientError { () async throws(HTTPClientError) in try await client.get(self.server.baseURL(tls: true) + "/cl") }
        guard case .tlsFailed = error else { return XCTFail("\(String(describing: error))") }
    }

    func testCertificateForAnotherNameIsRefused() async throws {
        let (certificate, key) = try authority.issueServerCertificate(named: "wrong", subjectAltName: "DNS:wrong.example")
        let wrong = try PythonHTTPServer(tlsCertificate: certificate, tlsKey: key)
        defer { wrong.stop() }
        let client = try client(trusting: authority.certificate)
        defer { client.shutdown() }
        for host in ["127.0.0.1", "localhost"] {
            let error = await clientError { () async throws(HTTPClientError) in try await client.get(wrong.baseURL(tls: true, host: host) + "/cl") }
            guard case .tlsFailed(let why) = error else { return XCTFail("\(host): \(String(describing: error))") }
            XCTAssertTrue(why.contains("mismatch") || why.contains("verify"), why)
        }
    }

    func testHTTPSToAPlainServerFailsInTLS() async throws {
        let plain = try PythonHTTPServer()
        defer { plain.stop() }
        let client = try client(trusting: authority.certificate)
        defer { client.shutdown() }
        let error = await clientError { () async throws(HTTPClientError) in try await client.get(plain.baseURL(tls: true) + "/cl", timeout: .seconds(5)) }
        guard case .tlsFailed = error else { return XCTFail("\(String(describing: error))") }
    }

    func testPlainHTTPToATLSServerIsNotAResponse() async throws {
        let client = try client(trusting: authority.certificate)
        defer { client.shutdown() }
        let error = await clientError { () async throws(HTTPClientError) in try await client.get(self.server.baseURL() + "/cl", timeout: .seconds(5)) }
        switch error {
        case .badResponse?, .connectionLost?: break
        default: XCTFail("\(String(describing: error))")
        }
    }

    func testUnreadableCAFileFailsAtCreation() {
        XCTAssertThrowsError(try HTTPClient(configuration: .init(additionalCAFile: "/nonexistent/ca.pem")))
    }
}
