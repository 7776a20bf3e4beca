import Foundation
import XCTest
import HubIO
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately plain blocking TCP server on 127.0.0.1 that runs one connection through a
/// `TLSEngine`: enough to let real TLS clients (the `openssl` CLI, Python's `ssl`) talk to the
/// engine over a real socket, the way the event loop will drive it. Every wait is bounded by
/// `poll`, so a silent peer fails the test instead of hanging it.
final class TLSLoopbackServer {
    /// What one served connection did.
    struct Outcome {
        var received: [UInt8] = []
        var error: TLSError?
        var peerClosed = false
        var negotiatedALPN: String?
        var protocolVersion: String?
    }

    let port: UInt16
    private let listener: Int32

    init() throws {
        // Peers that vanish mid-write must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TLSError(operation: "test socket", message: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else {
            close(listener)
            throw TLSError(operation: "test socket", message: "bind/listen: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit {
        close(listener)
    }

    /// Accepts one connection and serves it: every time plaintext arrives, `respond` sees all of it
    /// so far and may return a reply, after which the server sends close_notify. Runs until the
    /// peer closes (close_notify or EOF), the engine fails, or `timeout` passes.
    func serveOne(engine: TLSEngine, timeout: TimeInterval = 15, respond: ([UInt8]) -> String?) -> Outcome {
        var outcome = Outcome()
        let deadline = Date().addingTimeInterval(timeout)
        guard waitReadable(listener, until: deadline) else {
            outcome.error = TLSError(operation: "test accept", message: "no client connected")
            return outcome
        }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else {
            outcome.error = TLSError(operation: "test accept", message: "errno \(errno)")
            return outcome
        }
        defer { close(connection) }

        var replied = false
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while Date() < deadline {
            guard waitReadable(connection, until: deadline) else { break }
            let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
            if n <= 0 { break }  // EOF or reset: the client is gone.
            do {
                let status = try buffer.withUnsafeBytes { raw in
                    try engine.receive(UnsafeRawBufferPointer(rebasing: raw[0..<n])) { outcome.received.append(contentsOf: $0) }
                }
                if outcome.negotiatedALPN == nil { outcome.negotiatedALPN = engine.negotiatedALPN }
                if outcome.protocolVersion == nil { outcome.protocolVersion = engine.negotiatedProtocolVersion }
                if !replied, let reply = respond(outcome.received) {
                    try engine.send(Array(reply.utf8))
                    engine.shutdown()
                    replied = true
                }
                if status == .closed {
                    outcome.peerClosed = true
                    engine.shutdown()
                }
            } catch {
                outcome.error = error as? TLSError ?? TLSError(operation: "test", message: "\(error)")
            }
            // Always flush: after a failure this carries the fatal alert to the client.
            guard writeAll(connection, engine.drainAll()) else { break }
            if outcome.error != nil || outcome.peerClosed { break }
        }
        return outcome
    }

    private func waitReadable(_ fd: Int32, until deadline: Date) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
        return poll(&entry, 1, milliseconds) == 1
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
