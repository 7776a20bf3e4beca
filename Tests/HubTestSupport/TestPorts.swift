import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loopback ports for test servers that must be told their port before they start:
/// `redis-server` (`--port 0` means "no TCP at all") and PostgreSQL (`-p`, no port 0). A server
/// that can bind port 0 itself (the hub's `--port 0` / `HubServer.httpPort`, the Python peers)
/// must do that instead and report the port it got: nothing can take that port from it.
///
/// Why not "bind port 0, read the port back, release it, pass it on" (what this file did): the
/// kernel hands a released ephemeral port to the next process that binds port 0 or connects
/// out, so two test processes running at once (`swift test --parallel`, another worktree's suite on
/// this shared machine) could be given the same port and one server failed with EADDRINUSE, or
/// a test talked to another test's server.
///
/// So a port is *reserved*, not guessed:
/// - an exclusive `flock` on `/tmp/devicehub-test-ports/<port>.lock`, held until `release` (or
///   the process's exit, even by SIGKILL: the kernel drops the lock with the descriptor, so a
///   crashed run leaves nothing stale behind). Two processes that reserve this way can never
///   hold the same port, whatever the timing: this, not luck, is what rules out collisions.
///   The lock is also held across a test's kill/restart of its server, when the port is
///   unbound for a moment.
/// - candidates lie below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), so
///   the kernel never gives one to a process that knows nothing of the locks (outgoing
///   connections, port-0 binds, older checkouts still using the old scheme);
/// - a probe bind skips ports that some other program is listening on;
/// - each process starts its scan at an offset derived from its pid, so concurrent processes
///   rarely even try the same lock file.
/// What remains is a program outside this scheme binding that exact port in the instant
/// between the probe and the server's start: the server then fails to start with a message
/// naming the port, rather than two tests sharing a server.
public enum TestPorts {
    private static let directory = "/tmp/devicehub-test-ports"
    private static let lock = NSLock()
    /// Held lock files by port; closing the descriptor releases the reservation.
    nonisolated(unsafe) private static var held: [Int: Int32] = [:]

    /// A loopback port reserved for this process until `release(_:)` or exit.
    public static func reserve() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        let range = candidateRange()
        _ = mkdir(directory, 0o1777)
        // mkdir's mode is filtered by the umask; other users' tests must be able to add files.
        _ = chmod(directory, 0o1777)
        let span = range.count
        // Spread by a stride: test processes started together have neighbouring pids.
        let start = Int(getpid()) &* 131 % span
        for i in 0..<span {
            let port = range.lowerBound + (start + i) % span
            if held[port] != nil { continue }
            let fd = open("\(directory)/\(port).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
            guard fd >= 0 else { continue }  // e.g. another user's file we may not open
            _ = fchmod(fd, 0o666)
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                continue
            }
            guard isBindable(port) else {
                close(fd)
                continue
            }
            held[port] = fd
            return port
        }
        throw TestPortError(description: "no free loopback port in \(range) (all reserved under \(directory) or in use)")
    }

    /// Gives the port back (after its server stopped).
    public static func release(_ port: Int) {
        lock.lock()
        defer { lock.unlock() }
        if let fd = held.removeValue(forKey: port) { close(fd) }
    }

    /// 15000 up to the start of the ephemeral range (32768 by default).
    static func candidateRange() -> Range<Int> {
        var ephemeralLow = 32768
        if let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
           let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap({ Int($0) }) {
            ephemeralLow = low
        }
        // An unusual configuration with (almost) everything ephemeral: fall back to a fixed
        // range and rely on the locks and the probe alone.
        return ephemeralLow > 16000 ? 15000..<min(ephemeralLow, 32768) : 15000..<32768
    }

    /// Whether 127.0.0.1:port can be bound now, with SO_REUSEADDR as redis-server and
    /// PostgreSQL bind it (so a TIME_WAIT left by an earlier test does not count as busy).
    private static func isBindable(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

public struct TestPortError: Error, CustomStringConvertible {
    public let description: String
}
