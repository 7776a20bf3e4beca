import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loopback ports for test servers.
public enum TestPorts {
    /// A port that was free a moment ago (bind to 0, read it back, release it).
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestPortError(description: "socket() failed: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw TestPortError(description: "bind() failed: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct TestPortError: Error, CustomStringConvertible {
    public let description: String
}
