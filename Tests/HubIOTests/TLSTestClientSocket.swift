import Foundation
import HubIO
#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback TCP client socket for driving a client `TLSEngine` against an external
/// server; reads are bounded by `poll` so a silent server fails the test instead of hanging it.
final class TLSTestClientSocket {
    private let fd: Int32

    init(port: UInt16) throws {
        signal(SIGPIPE, SIG_IGN)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TLSError(operation: "test socket", message: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw TLSError(operation: "test connect", message: "errno \(errno)")
        }
    }

    deinit {
        close(fd)
    }

    func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            guard n > 0 else { throw TLSError(operation: "test write", message: "errno \(errno)") }
            offset += n
        }
    }

    /// The next bytes from the server, `[]` at EOF, or nil if nothing arrived before `deadline`.
    func read(until deadline: Date) throws -> [UInt8]? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(max(0, deadline.timeIntervalSinceNow) * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw TLSError(operation: "test read", message: "errno \(errno)") }
        return Array(buffer[0..<n])
    }
}
