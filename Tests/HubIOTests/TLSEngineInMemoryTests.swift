import Foundation
import XCTest
import HubIO

/// Server and client engines talking to each other through memory only: handshake, ALPN, data in
/// both directions at awkward split sizes, buffering before the handshake, and close_notify.
final class TLSEngineInMemoryTests: TLSCertificateTestCase {

    private func makePair(verify: Bool = false, serverName: String? = "localhost", alpn: [String] = ["http/1.1"]) throws -> TLSEnginePair {
        let server = try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key)
        let client = try TLSContext.client(verifyPeer: verify, caFile: verify ? certificate : nil, alpn: alpn)
        return try TLSEnginePair(serverContext: server, clientContext: client, serverName: serverName)
    }

    func testHandshakeNegotiatesTLS13AndHTTP11() throws {
        let pair = try makePair()
        XCTAssertFalse(pair.server.isHandshakeComplete)
        XCTAssertFalse(pair.client.hasPendingCiphertext)
        try pair.client.startHandshake()
        XCTAssertTrue(pair.client.hasPendingCiphertext, "ClientHello must be ready to drain")
        try pair.pump()

        XCTAssertTrue(pair.server.isHandshakeComplete)
        XCTAssertTrue(pair.client.isHandshakeComplete)
        XCTAssertEqual(pair.server.negotiatedALPN, "http/1.1")
        XCTAssertEqual(pair.client.negotiatedALPN, "http/1.1")
        XCTAssertEqual(pair.server.negotiatedProtocolVersion, "TLSv1.3")
        XCTAssertFalse(pair.server.hasPendingCiphertext)
        XCTAssertFalse(pair.client.hasPendingCiphertext)
    }

    func testDataFlowsBothWays() throws {
        let pair = try makePair()
        try pair.handshake()
        try pair.client.send("GET / HTTP/1.1\r\n\r\n")
        try pair.pump()
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "GET / HTTP/1.1\r\n\r\n")

        try pair.server.send("HTTP/1.1 200 OK\r\n\r\n")
        try pair.server.send("more")
        try pair.pump()
        XCTAssertEqual(String(decoding: pair.clientReceived, as: UTF8.self), "HTTP/1.1 200 OK\r\n\r\nmore")
        XCTAssertEqual(pair.serverStatus, .ok)
        XCTAssertEqual(pair.clientStatus, .ok)
    }

    /// 1 MiB each way, with the ciphertext cut at random sizes from 1 byte to ~3 records, so
    /// records arrive split across calls and many records arrive in one call.
    func testOneMebibyteEachWayAtRandomSplits() throws {
        for seed: UInt64 in [1, 2, 3] {
            var random = TLSSeededGenerator(seed: seed)
            let pair = try makePair()
            pair.nextChunkSize = { Int.random(in: 1...50_000, using: &random) }
            try pair.handshake()

            let upload = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let download = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Sent in uneven pieces too, so record boundaries never line up with send calls.
            var offset = 0
            while offset < upload.count {
                let n = min(Int.random(in: 1...100_000, using: &random), upload.count - offset)
                try pair.client.send(Array(upload[offset..<(offset + n)]))
                try pair.server.send(Array(download[offset..<(offset + n)]))
                offset += n
            }
            try pair.pump()

            XCTAssertEqual(pair.serverReceived.count, upload.count, "seed \(seed)")
            XCTAssertTrue(pair.serverReceived == upload, "upload corrupted, seed \(seed)")
            XCTAssertTrue(pair.clientReceived == download, "download corrupted, seed \(seed)")
            XCTAssertLessThanOrEqual(pair.largestDelivery, 16 * 1024, "one delivery is at most one record")
        }
    }

    /// The whole of a large burst in a single `receive` call: the read loop must keep going until
    /// OpenSSL wants more input, not stop after the first record.
    func testManyRecordsInOneReceiveCall() throws {
        let pair = try makePair()
        try pair.handshake()
        let payload = [UInt8](repeating: 0x5A, count: 300_000)
        try pair.client.send(payload)
        let ciphertext = pair.client.drainAll()
        XCTAssertGreaterThan(ciphertext.count, payload.count)

        var received: [UInt8] = []
        var deliveries = 0
        let status = try ciphertext.withUnsafeBytes { raw in
            try pair.server.receive(raw) { plaintext in
                deliveries += 1
                received.append(contentsOf: plaintext)
            }
        }
        XCTAssertEqual(status, .ok)
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload, "payload corrupted")
        XCTAssertGreaterThanOrEqual(deliveries, 300_000 / (16 * 1024))
    }

    func testHandshakeFedOneByteAtATime() throws {
        let pair = try makePair()
        pair.nextChunkSize = { 1 }
        try pair.handshake()
        try pair.client.send("tiny steps")
        try pair.pump()
        XCTAssertTrue(pair.server.isHandshakeComplete)
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "tiny steps")
    }

    /// Both sides write before their handshake is done; the bytes are held and sent, in order,
    /// once it completes.
    func testSendBeforeHandshakeIsBufferedThenFlushed() throws {
        let pair = try makePair()
        try pair.client.send("early ")
        try pair.client.send("bird")
        try pair.server.send("server first")
        XCTAssertFalse(pair.client.hasPendingCiphertext, "nothing may be encrypted before the handshake")
        try pair.handshake()
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "early bird")
        XCTAssertEqual(String(decoding: pair.clientReceived, as: UTF8.self), "server first")
    }

    func testPreHandshakeBufferIsBounded() throws {
        let context = try TLSContext.client(verifyPeer: false)
        let engine = try TLSEngine(context: context, serverName: "localhost", maxBufferedPlaintext: 1000)
        try engine.send([UInt8](repeating: 1, count: 600))
        XCTAssertThrowsError(try engine.send([UInt8](repeating: 2, count: 600))) { error in
            let tls = error as? TLSError
            XCTAssertEqual(tls?.operation, "send")
            XCTAssertTrue(tls?.message.contains("1000") ?? false, "\(error)")
        }
        // The refused write left the engine usable: a send that fits still goes through.
        try engine.send([UInt8](repeating: 3, count: 400))
    }

    /// close_notify reaches the peer as `.closed`, after every byte sent before it.
    func testCloseNotifyGivesClosed() throws {
        let pair = try makePair()
        try pair.handshake()
        try pair.client.send("last words")
        pair.client.shutdown()
        XCTAssertThrowsError(try pair.client.send("too late"))
        try pair.pump()
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "last words")
        XCTAssertEqual(pair.serverStatus, .closed)

        // The server may still answer (half-close), then closes its side.
        try pair.server.send("goodbye")
        pair.server.shutdown()
        try pair.pump()
        XCTAssertEqual(String(decoding: pair.clientReceived, as: UTF8.self), "goodbye")
        XCTAssertEqual(pair.clientStatus, .closed)

        // Input after close_notify is not looked at.
        var ignored: [UInt8] = []
        XCTAssertEqual(try pair.server.receive([1, 2, 3], into: &ignored), .closed)
    }

    /// shutdown() before the handshake completes must not drop data already accepted by send().
    func testShutdownDuringHandshakeWaitsForBufferedData() throws {
        let pair = try makePair()
        try pair.client.send("queued")
        pair.client.shutdown()
        try pair.handshake()
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "queued")
        XCTAssertEqual(pair.serverStatus, .closed)
    }

    func testClientVerifiesCertificateAndHostName() throws {
        let pair = try makePair(verify: true, serverName: "localhost")
        try pair.handshake()
        XCTAssertTrue(pair.client.isHandshakeComplete)

        let byAddress = try makePair(verify: true, serverName: "127.0.0.1")
        try byAddress.handshake()
        XCTAssertTrue(byAddress.client.isHandshakeComplete)

        let wrongName = try makePair(verify: true, serverName: "devicehub.example")
        XCTAssertThrowsError(try wrongName.handshake()) { error in
            let tls = error as? TLSError
            XCTAssertEqual(tls?.operation, "handshake")
            XCTAssertTrue(tls?.message.contains("certificate verify failed") ?? false, "\(error)")
            XCTAssertTrue(tls?.message.contains("hostname mismatch") ?? false, "\(error)")
        }
        XCTAssertTrue(wrongName.client.hasPendingCiphertext, "the client queues a fatal alert for the server")
    }

    func testClientRejectsUntrustedServer() throws {
        // Trusting an unrelated certificate: the server's self-signed one does not chain to it.
        let other = try directory.makeSelfSignedCertificate(named: "other")
        let server = try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key)
        let client = try TLSContext.client(verifyPeer: true, caFile: other.certificate)
        let pair = try TLSEnginePair(serverContext: server, clientContext: client)
        XCTAssertThrowsError(try pair.handshake()) { error in
            XCTAssertTrue("\(error)".contains("certificate verify failed"), "\(error)")
        }
        // And every later call reports the same failure instead of touching OpenSSL again.
        XCTAssertThrowsError(try pair.client.send("x"))
        var sink: [UInt8] = []
        XCTAssertThrowsError(try pair.client.receive([0x17, 0x03, 0x03], into: &sink))
    }

    /// The server's selector accepts only http/1.1: a client offering only h2 is refused with a
    /// fatal alert, and a client offering no ALPN at all is let through.
    func testALPNMismatchIsRefusedAndNoALPNIsAllowed() throws {
        let mismatch = try makePair(alpn: ["h2"])
        XCTAssertThrowsError(try mismatch.handshake()) { error in
            XCTAssertEqual((error as? TLSError)?.operation, "handshake")
            XCTAssertTrue("\(error)".lowercased().contains("application protocol"), "\(error)")
        }

        let none = try makePair(alpn: [])
        try none.handshake()
        XCTAssertTrue(none.server.isHandshakeComplete)
        XCTAssertNil(none.server.negotiatedALPN)
    }

    func testServerWithoutALPNNegotiatesNone() throws {
        let server = try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key, alpn: false)
        let pair = try TLSEnginePair(serverContext: server, clientContext: TLSContext.client(verifyPeer: false))
        try pair.handshake()
        XCTAssertTrue(pair.client.isHandshakeComplete)
        XCTAssertNil(pair.client.negotiatedALPN)
    }

    /// Reload = new context for new connections; an engine on the old context keeps working after
    /// the caller drops its last reference to that context.
    func testConnectionOutlivesReplacedContext() throws {
        var current: TLSContext? = try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key)
        let client = try TLSContext.client(verifyPeer: false)
        let pair = try TLSEnginePair(server: TLSEngine(context: current!), client: TLSEngine(context: client))
        current = try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key)
        try pair.handshake()
        try pair.client.send("still here")
        try pair.pump()
        XCTAssertEqual(String(decoding: pair.serverReceived, as: UTF8.self), "still here")
        XCTAssertNotNil(current)
    }

    /// Plaintext is decrypted into one per-thread scratch buffer: every delivery on this thread
    /// comes from the same memory, across calls and across engines (no allocation per call).
    func testPlaintextComesFromOneScratchBufferPerThread() throws {
        let first = try makePair()
        let second = try makePair()
        try first.handshake()
        try second.handshake()
        var addresses = Set<UnsafeRawPointer>()
        // Blocks of the scratch size held between calls, so a buffer that was malloc'ed and freed
        // per call could not come back at the same address and pass by luck.
        var held: [UnsafeMutableRawPointer] = []
        defer { held.forEach { $0.deallocate() } }
        for pair in [first, second] {
            for message in ["one", "two"] {
                try pair.client.send(message)
                let record = pair.client.drainAll()
                _ = try record.withUnsafeBytes { raw in
                    try pair.server.receive(raw) { plaintext in addresses.insert(plaintext.baseAddress!) }
                }
                held.append(UnsafeMutableRawPointer.allocate(byteCount: 16 * 1024, alignment: 16))
            }
        }
        XCTAssertEqual(addresses.count, 1)
    }

    /// A delivery callback that feeds another engine on the same thread must not have its own
    /// plaintext overwritten by the nested decryption.
    func testReentrantReceiveFromCallbackKeepsBothPlaintexts() throws {
        let outer = try makePair()
        let inner = try makePair()
        try outer.handshake()
        try inner.handshake()
        try outer.client.send("outer-payload")
        try inner.client.send("inner-payload")
        let outerRecord = outer.client.drainAll()
        let innerRecord = inner.client.drainAll()

        var seenOuter = ""
        var seenInner = ""
        _ = try outerRecord.withUnsafeBytes { raw in
            try outer.server.receive(raw) { plaintext in
                _ = try? innerRecord.withUnsafeBytes { innerRaw in
                    try inner.server.receive(innerRaw) { seenInner += String(decoding: $0, as: UTF8.self) }
                }
                // Read only after the nested call: it must not have clobbered this buffer.
                seenOuter += String(decoding: plaintext, as: UTF8.self)
            }
        }
        XCTAssertEqual(seenOuter, "outer-payload")
        XCTAssertEqual(seenInner, "inner-payload")
    }

    /// One context shared by connections on several threads (the reload model publishes a context
    /// to every loop thread); each thread decrypts into its own scratch buffer.
    func testOneContextServesEngineOnSeveralThreads() throws {
        let serverContext = try TLSContext.server(certificateChainFile: certificate, privateKeyFile: key)
        let clientContext = try TLSContext.client(verifyPeer: true, caFile: certificate)
        let results = TLSLockedList()
        var threads: [Thread] = []
        let done = DispatchGroup()
        for index in 0..<4 {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                var outcome = "thread \(index): failed"
                do {
                    let pair = try TLSEnginePair(serverContext: serverContext, clientContext: clientContext)
                    try pair.handshake()
                    for round in 0..<50 {
                        try pair.client.send("m\(round);")
                        try pair.pump()
                    }
                    outcome = "thread \(index): \(pair.serverReceived.count)"
                } catch {
                    outcome = "thread \(index): \(error)"
                }
                results.append(outcome)
            }
            threads.append(thread)
            thread.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        let expectedBytes = (0..<50).map { "m\($0);".utf8.count }.reduce(0, +)
        XCTAssertEqual(results.items.sorted(), (0..<4).map { "thread \($0): \(expectedBytes)" })
    }
}
