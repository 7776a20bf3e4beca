import CHubShims
import Foundation

/// An IPv4 or IPv6 address and port, resolved numerically (listeners bind to literal
/// addresses; names are resolved once at start-up with `resolve`).
public struct SocketAddress: CustomStringConvertible, Sendable {
    var storage: sockaddr_storage
    var length: socklen_t

    public init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// Resolves `host` (literal or name) and `port` for a TCP socket; the first result wins.
    public static func resolve(host: String, port: Int) throws -> SocketAddress {
        try resolveAll(host: host, port: port)[0]
    }

    /// Every address `host` resolves to for a TCP socket, in the resolver's order of preference,
    /// so that a client can fall back to the next one (`localhost` is often `::1` first while a
    /// server listens on 127.0.0.1 only). Blocks in getaddrinfo: call it off the event loops.
    public static func resolveAll(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host == "*" ? "0.0.0.0" : host, String(port), &hints, &result)
        guard rc == 0, result != nil else {
            throw IOError(call: "getaddrinfo(\(host))", errno: rc == EAI_SYSTEM ? errno : EINVAL)
        }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var next = result
        while let info = next {
            var storage = sockaddr_storage()
            memcpy(&storage, info.pointee.ai_addr, Int(info.pointee.ai_addrlen))
            addresses.append(SocketAddress(storage: storage, length: info.pointee.ai_addrlen))
            next = info.pointee.ai_next
        }
        return addresses
    }

    public var family: Int32 { Int32(storage.ss_family) }

    public var port: Int {
        get {
            withUnsafeBytes(of: storage) { raw in
                if family == AF_INET6 { return Int(UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))) }
                return Int(UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self)))
            }
        }
        set {
            // sin_port and sin6_port share offset 2.
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: UInt16(newValue).bigEndian, toByteOffset: 2, as: UInt16.self) }
        }
    }

    public var description: String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var copy = storage
        let rc = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
            }
        }
        let h = rc == 0 ? String(cString: host) : "?"
        return family == AF_INET6 ? "[\(h)]:\(port)" : "\(h):\(port)"
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var copy = storage
        return try withUnsafePointer(to: &copy) { try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) } }
    }

    /// The local address a socket is bound to (to learn the port after binding port 0).
    static func local(of fd: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try syscallChecked("getsockname") { getsockname(fd, sa, &len) }
            }
        }
        return SocketAddress(storage: storage, length: len)
    }
}

/// Socket options in one place, with the reason for each.
enum SocketOptions {
    static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: StaticString) throws {
        var v = value
        try syscallChecked(call) { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// Responses are written whole per iteration, so Nagle only adds latency.
    static func noDelay(_ fd: Int32) {
        try? setInt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)")
    }
}
