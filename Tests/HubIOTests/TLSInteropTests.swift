import Foundation
import XCTest
import HubIO

/// Cross-checks against independent TLS stacks over a real loopback socket: the `openssl s_client`
/// CLI and Python's `ssl` module as clients of an engine-driven server, and a Python server for
/// the engine as client. Both peers verify the other's view (ALPN, version, payload).
final class TLSInteropTests: TLSCertificateTestCase {

    /// A Python TLS client: connects, sends "ping", reads to EOF and prints the reply with the
    /// negotiated ALPN and version; exits 3 on an SSL error. `mode` picks the protocol range.
    private static let pythonClient = #"""
    import socket, ssl, sys
    port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.set_alpn_protocols(["http/1.1"])
    if mode == "tls12":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif mode == "tls11":
        # SECLEVEL=0 so this client really offers TLS 1.1 instead of refusing locally: the point
        # is that the *server* says no.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"ping")
                reply = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                print("REPLY", reply.decode(), tls.selected_alpn_protocol(), tls.version())
        except ssl.SSLError as error:
            print("SSLERROR", error)
            sys.exit(3)
    """#

    private func serverEngine() throws -> TLSEngine {
        try TLSEngine(context: TLSContext.server(certificateChainFile: certificate, privateKeyFile: key))
    }

    private func pingPong(_ received: [UInt8]) -> String? {
        String(decoding: received, as: UTF8.self) == "ping" ? "pong" : nil
    }

    func testPythonClientPingPongTLS13() throws {
        let server = try TLSLoopbackServer()
        let client = TLSChildProcess("python3", ["-W", "ignore", "-c", Self.pythonClient, "\(server.port)", certificate, "default"])
        try client.start()
        let outcome = server.serveOne(engine: try serverEngine(), respond: pingPong)
        let result = client.wait()

        XCTAssertNil(outcome.error)
        XCTAssertEqual(String(decoding: outcome.received, as: UTF8.self), "ping")
        XCTAssertEqual(outcome.negotiatedALPN, "http/1.1")
        XCTAssertEqual(outcome.protocolVersion, "TLSv1.3")
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "REPLY pong http/1.1 TLSv1.3")
    }

    func testPythonClientPingPongTLS12() throws {
        let server = try TLSLoopbackServer()
        let client = TLSChildProcess("python3", ["-W", "ignore", "-c", Self.pythonClient, "\(server.port)", certificate, "tls12"])
        try client.start()
        let outcome = server.serveOne(engine: try serverEngine(), respond: pingPong)
        let result = client.wait()

        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.protocolVersion, "TLSv1.2")
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "REPLY pong http/1.1 TLSv1.2")
    }

    func testOpenSSLClientPingPong() throws {
        let server = try TLSLoopbackServer()
        // -ign_eof: keep reading after stdin ("ping") ends, until the server's close_notify.
        let client = TLSChildProcess("openssl", [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-servername", "localhost",
            "-CAfile", certificate, "-verify_return_error", "-verify_hostname", "localhost",
            "-alpn", "http/1.1", "-quiet", "-ign_eof",
        ])
        try client.start(stdin: "ping")
        let outcome = server.serveOne(engine: try serverEngine(), respond: pingPong)
        let result = client.wait()

        XCTAssertNil(outcome.error)
        XCTAssertEqual(String(decoding: outcome.received, as: UTF8.self), "ping")
        XCTAssertEqual(outcome.negotiatedALPN, "http/1.1")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "pong")
    }

    func testOpenSSLTLS11ClientIsRefused() throws {
        let server = try TLSLoopbackServer()
        let client = TLSChildProcess("openssl", [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-quiet",
        ])
        try client.start(stdin: "ping")
        let outcome = server.serveOne(engine: try serverEngine(), respond: pingPong)
        let result = client.wait()

        // The server engine itself rejected the ClientHello (not a client-side refusal to try).
        XCTAssertEqual(outcome.error?.operation, "handshake")
        XCTAssertTrue(outcome.error?.message.contains("unsupported protocol") ?? false, "\(String(describing: outcome.error))")
        XCTAssertTrue(outcome.received.isEmpty)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stdout.contains("pong"))
        XCTAssertTrue(result.stderr.contains("alert"), "the client is told why: \(result.stderr)")
    }

    func testPythonTLS11ClientIsRefused() throws {
        let server = try TLSLoopbackServer()
        let client = TLSChildProcess("python3", ["-W", "ignore", "-c", Self.pythonClient, "\(server.port)", certificate, "tls11"])
        try client.start()
        let outcome = server.serveOne(engine: try serverEngine(), respond: pingPong)
        let result = client.wait()

        XCTAssertTrue(outcome.error?.message.contains("unsupported protocol") ?? false, "\(String(describing: outcome.error))")
        XCTAssertEqual(result.status, 3, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("SSLERROR"), result.stdout)
    }

    /// The engine as a verifying client against Python's TLS server over loopback.
    func testEngineClientAgainstPythonServer() throws {
        let script = #"""
        import socket, ssl, sys
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.settimeout(10)
            print(listener.getsockname()[1], flush=True)
            conn, _ = listener.accept()
            conn.settimeout(10)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                data = tls.recv(4)
                tls.sendall(b"pong" if data == b"ping" else b"what?")
                tls.unwrap()
            print("SERVED", data.decode(), flush=True)
        """#
        let python = TLSChildProcess("python3", ["-W", "ignore", "-c", script, certificate, key])
        try python.start()
        guard let portLine = python.readLine(), let port = UInt16(portLine) else {
            let result = python.wait()
            return XCTFail("python server did not start: \(result.stderr)")
        }

        let engine = try TLSEngine(context: TLSContext.client(verifyPeer: true, caFile: certificate), serverName: "localhost")
        let socket = try TLSTestClientSocket(port: port)
        try engine.startHandshake()
        try engine.send("ping")
        var reply: [UInt8] = []
        var status = TLSReceiveStatus.ok
        let deadline = Date().addingTimeInterval(15)
        while status == .ok && Date() < deadline {
            try socket.writeAll(engine.drainAll())
            guard let bytes = try socket.read(until: deadline), !bytes.isEmpty else { break }
            status = try engine.receive(bytes, into: &reply)
        }
        engine.shutdown()
        try socket.writeAll(engine.drainAll())
        let result = python.wait()

        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "pong")
        XCTAssertEqual(status, .closed, "python's unwrap() sends close_notify")
        XCTAssertEqual(engine.negotiatedALPN, "http/1.1")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "SERVED ping")
    }
}
