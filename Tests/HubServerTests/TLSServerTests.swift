import Foundation
import XCTest

/// HTTPS through the real binary, checked with independent clients (curl, openssl s_client).
final class TLSServerTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("devicehub-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try makeCertificate(cn: "first")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: dir)
    }

    private func makeCertificate(cn: String) throws {
        let out = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                                               "-subj", "/CN=\(cn)", "-keyout", dir.appendingPathComponent("key.pem").path,
                                               "-out", dir.appendingPathComponent("cert.pem").path])
        XCTAssertEqual(out.status, 0, out.output)
    }

    @discardableResult
    private func run(_ tool: String, _ args: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private func startHub() throws -> (HubProcess, Int) {
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--tls-port", "0", "--loops", "2",
                                             "--tls-cert", dir.appendingPathComponent("cert.pem").path,
                                             "--tls-key", dir.appendingPathComponent("key.pem").path])
        _ = try hub.waitUntilListening()
        let line = try XCTUnwrap(hub.log.split(separator: "\n").first { $0.contains("\"msg\":\"listening\"") })
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return (hub, try XCTUnwrap(obj["tls_port"] as? Int))
    }

    func testCurlOverHTTPSWithKeepAlive() throws {
        let (hub, tlsPort) = try startHub()
        let url = "https://127.0.0.1:\(tlsPort)/healthz"
        // Two URLs in one curl run reuse the connection (keep-alive over TLS).
        let out = try run("/usr/bin/curl", ["-sS", "-k", "--http1.1", "-v", url, url])
        XCTAssertEqual(out.status, 0, out.output)
        XCTAssertEqual(out.output.components(separatedBy: "{\"status\":\"ok\"}").count - 1, 2, out.output)
        XCTAssertTrue(out.output.contains("ALPN: server accepted http/1.1") || out.output.contains("ALPN, server accepted to use http/1.1"), out.output)
        XCTAssertTrue(out.output.contains("Re-using existing connection") || out.output.contains("Reusing existing connection"), out.output)
        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 5), 0)
    }

    func testTLS11IsRefused() throws {
        let (hub, tlsPort) = try startHub()
        // OpenSSL 3's client refuses TLS 1.1 by itself at its default security level (no
        // SHA-1 signatures), so a plain `-tls1_1` fails whatever the server does. At
        // SECLEVEL=0 it offers and completes TLS 1.1 with a server that allows it: only the
        // hub can make this handshake fail.
        func handshake(_ version: String) throws -> (status: Int32, output: String) {
            try run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(tlsPort)", version, "-cipher", "DEFAULT@SECLEVEL=0"], input: "")
        }
        let old = try handshake("-tls1_1")
        XCTAssertNotEqual(old.status, 0, old.output)
        XCTAssertTrue(old.output.contains("Cipher is (NONE)"), "no TLS 1.1 session may be established. \(old.output)")
        // Refused by the server (alert 70, protocol_version), not by the client.
        XCTAssertTrue(old.output.contains("alert protocol version"), old.output)
        // Positive control: the very same invocation with TLS 1.2 completes.
        let ok = try handshake("-tls1_2")
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertTrue(ok.output.contains("New, TLSv1.2, Cipher is"), ok.output)
        hub.signal(SIGTERM)
        _ = hub.waitForExit(timeout: 5)
    }

    func testSIGHUPReloadsTheCertificate() throws {
        let (hub, tlsPort) = try startHub()
        let before = try run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(tlsPort)"], input: "")
        XCTAssertTrue(before.output.contains("CN = first"), before.output)
        try makeCertificate(cn: "second")
        hub.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        var after = ""
        while Date() < deadline {
            after = try run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(tlsPort)"], input: "").output
            if after.contains("CN = second") { break }
            usleep(100_000)
        }
        XCTAssertTrue(after.contains("CN = second"), after)
        XCTAssertTrue(hub.log.contains("TLS certificate reloaded"))
        hub.signal(SIGTERM)
        _ = hub.waitForExit(timeout: 5)
    }
}
