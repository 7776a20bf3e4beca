import Foundation
import XCTest
import HubIO
// Only to look at the thread's OpenSSL error queue, which the engine must leave empty.
import COpenSSL

/// Hostile or broken input: garbage ciphertext, mangled handshakes, unusable key files. Each must
/// end in a `TLSError` that says what went wrong, never a crash, and must not poison the next
/// connection on the same thread.
final class TLSBadInputTests: TLSCertificateTestCase {

    private func serverContext() throws -> TLSContext {
        try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key)
    }

    func testPlainHTTPToTLSServerThrows() throws {
        let engine = try TLSEngine(context: serverContext())
        var plaintext: [UInt8] = []
        XCTAssertThrowsError(try engine.receive(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), into: &plaintext)) { error in
            let tls = error as? TLSError
            XCTAssertEqual(tls?.operation, "handshake")
            XCTAssertFalse(tls?.message.isEmpty ?? true)
        }
        XCTAssertTrue(plaintext.isEmpty)
    }

    func testRandomGarbageNeverCrashes() throws {
        let context = try serverContext()
        var random = TLSSeededGenerator(seed: 42)
        var failures = 0
        for _ in 0..<300 {
            let engine = try TLSEngine(context: context)
            let garbage = (0..<Int.random(in: 1...4096, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var plaintext: [UInt8] = []
            do {
                // A prefix that could still become a valid record is legitimately .ok (more needed).
                let status = try engine.receive(garbage, into: &plaintext)
                XCTAssertEqual(status, .ok)
            } catch is TLSError {
                failures += 1
            }
            XCTAssertTrue(plaintext.isEmpty)
            _ = engine.drainAll()
        }
        XCTAssertGreaterThan(failures, 250, "nearly all random inputs are invalid records")
    }

    /// A real ClientHello with random bytes flipped: gets further into the parser than pure noise.
    func testMangledClientHelloNeverCrashes() throws {
        let context = try serverContext()
        let clientContext = try TLSContext.client(verifyPeer: false)
        let hello = try { () throws -> [UInt8] in
            let client = try TLSEngine(context: clientContext, serverName: "localhost")
            try client.startHandshake()
            return client.drainAll()
        }()
        XCTAssertGreaterThan(hello.count, 100)

        var random = TLSSeededGenerator(seed: 7)
        for _ in 0..<300 {
            var mangled = hello
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                mangled[Int.random(in: 0..<mangled.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            }
            let engine = try TLSEngine(context: context)
            var plaintext: [UInt8] = []
            _ = try? engine.receive(mangled, into: &plaintext)
            XCTAssertTrue(plaintext.isEmpty)
            _ = engine.drainAll()
        }
    }

    func testGarbageAfterClientHelloThrowsOnClient() throws {
        let client = try TLSEngine(context: TLSContext.client(verifyPeer: false), serverName: "localhost")
        try client.startHandshake()
        _ = client.drainAll()
        var plaintext: [UInt8] = []
        XCTAssertThrowsError(try client.receive([UInt8](repeating: 0xEE, count: 64), into: &plaintext)) { error in
            XCTAssertEqual((error as? TLSError)?.operation, "handshake")
        }
    }

    /// A tampered application-data record on an established connection fails authentication.
    func testTamperedRecordAfterHandshakeThrows() throws {
        let pair = try TLSEnginePair(serverContext: serverContext(), clientContext: TLSContext.client(verifyPeer: false))
        try pair.handshake()
        try pair.client.send("authentic")
        var record = pair.client.drainAll()
        record[record.count - 3] ^= 0x01
        var plaintext: [UInt8] = []
        XCTAssertThrowsError(try pair.server.receive(record, into: &plaintext)) { error in
            let tls = error as? TLSError
            XCTAssertEqual(tls?.operation, "read")
            XCTAssertTrue(tls?.message.contains("bad record mac") ?? false, "\(error)")
        }
        XCTAssertTrue(plaintext.isEmpty, "no unauthenticated byte may be delivered")
        XCTAssertTrue(pair.server.hasPendingCiphertext, "a fatal alert is queued for the peer")
        XCTAssertThrowsError(try pair.server.send("after failure"))
    }

    /// A failure leaves nothing in the thread's OpenSSL error queue: the queue is empty after every
    /// kind of error, the next connection on this thread handshakes normally, and the next error
    /// names only its own cause.
    func testErrorsDoNotLeakIntoTheNextConnection() throws {
        let context = try serverContext()
        var plaintext: [UInt8] = []
        var firstMessage = ""
        do {
            _ = try TLSEngine(context: context).receive(Array("not tls at all, just text".utf8), into: &plaintext)
            XCTFail("garbage accepted")
        } catch let error as TLSError {
            firstMessage = error.message
        }
        XCTAssertEqual(ERR_peek_error(), 0, "handshake failure left the error queue dirty")

        let pairForTamper = try TLSEnginePair(serverContext: context, clientContext: TLSContext.client(verifyPeer: false))
        try pairForTamper.handshake()
        try pairForTamper.client.send("x")
        var record = pairForTamper.client.drainAll()
        record[record.count - 1] ^= 0xFF
        XCTAssertThrowsError(try pairForTamper.server.receive(record, into: &plaintext))
        XCTAssertEqual(ERR_peek_error(), 0, "read failure left the error queue dirty")

        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: directory.path + "/missing.pem", privateKeyFile: key))
        XCTAssertEqual(ERR_peek_error(), 0, "context failure left the error queue dirty")
        let untrusted = try TLSEnginePair(serverContext: context,
                                          clientContext: TLSContext.client(verifyPeer: true, caFile: directory.makeSelfSignedCertificate(named: "ca").certificate))
        XCTAssertThrowsError(try untrusted.handshake())
        XCTAssertEqual(ERR_peek_error(), 0, "verification failure left the error queue dirty")

        let pair = try TLSEnginePair(serverContext: context, clientContext: TLSContext.client(verifyPeer: false))
        try pair.handshake()
        try pair.client.send("fine")
        try pair.pump()
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "fine")

        let other = try directory.makeSelfSignedCertificate(named: "other")
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: certificate, privateKeyFile: other.key)) { error in
            let message = (error as? TLSError)?.message ?? ""
            XCTAssertFalse(firstMessage.isEmpty)
            XCTAssertFalse(message.contains(firstMessage), "stale error leaked: \(message)")
        }
    }

    func testMismatchedKeyAndCertificateIsAClearError() throws {
        let other = try directory.makeSelfSignedCertificate(named: "other")
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: certificate, privateKeyFile: other.key)) { error in
            guard let tls = error as? TLSError else { return XCTFail("\(error)") }
            XCTAssertEqual(tls.operation, "load private key")
            XCTAssertTrue(tls.message.contains("does not match"), tls.message)
            XCTAssertTrue(tls.message.contains(other.key), tls.message)
            XCTAssertTrue(tls.message.contains(certificate), tls.message)
            XCTAssertTrue(tls.description.contains("key values mismatch"), tls.description)
        }
    }

    func testMissingFilesAreNamed() throws {
        let missingCertificate = directory.path + "/no-such-cert.pem"
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: missingCertificate, privateKeyFile: key)) { error in
            let tls = error as? TLSError
            XCTAssertEqual(tls?.operation, "load certificate chain")
            XCTAssertTrue(tls?.message.contains(missingCertificate) ?? false, "\(error)")
        }

        let missingKey = directory.path + "/no-such-key.pem"
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: certificate, privateKeyFile: missingKey)) { error in
            let tls = error as? TLSError
            XCTAssertEqual(tls?.operation, "load private key")
            XCTAssertTrue(tls?.message.contains(missingKey) ?? false, "\(error)")
        }

        let missingCA = directory.path + "/no-such-ca.pem"
        XCTAssertThrowsError(try TLSContext.client(verifyPeer: true, caFile: missingCA)) { error in
            XCTAssertTrue((error as? TLSError)?.message.contains(missingCA) ?? false, "\(error)")
        }
    }

    func testNonPEMCertificateFileIsNamed() throws {
        let junk = directory.path + "/junk.pem"
        try Data("this is not a certificate\n".utf8).write(to: URL(fileURLWithPath: junk))
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: junk, privateKeyFile: key)) { error in
            XCTAssertTrue((error as? TLSError)?.message.contains(junk) ?? false, "\(error)")
        }
    }

    func testInvalidALPNNameIsRejected() {
        XCTAssertThrowsError(try TLSContext.client(verifyPeer: false, alpn: [""]))
        XCTAssertThrowsError(try TLSContext.client(verifyPeer: false, alpn: [String(repeating: "x", count: 256)]))
    }
}
