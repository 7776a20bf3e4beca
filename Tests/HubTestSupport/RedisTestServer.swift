import Foundation
import HubIO
import HubRedis
#if canImport(Glibc)
import Glibc
#endif

/// Why the Redis integration tests could not even start. They fail with this, never skip:
/// CI must run them (`scripts/test` installs `redis-server` and `redis-tools`).
public struct RedisTestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// A real `redis-server` for the tests: a child process on a port of 127.0.0.1 reserved with
/// `TestPorts`, with no persistence (`--save "" --appendonly no`) in a temporary directory,
/// killed and restarted on demand for fault tests. When `DEVICEHUB_TEST_REDIS_URL` is set and `external` is allowed, that
/// server is used instead and this object only describes it.
public final class RedisTestServer: @unchecked Sendable {
    public let host: String
    public let port: Int
    public let url: String
    public let configuration: RedisConfiguration
    public let ownsProcess: Bool
    private var process: Process?
    private let directory: URL?

    /// The server for a test class: the external one when the environment names it, else our own.
    public static func startShared() throws -> RedisTestServer {
        if let url = ProcessInfo.processInfo.environment["DEVICEHUB_TEST_REDIS_URL"], !url.isEmpty {
            let configuration = try RedisConfiguration(url: url)
            return RedisTestServer(external: url, configuration: configuration)
        }
        return try startPrivate()
    }

    /// A server of our own (fault tests must be able to kill it). `DEBUG` is enabled for
    /// `DEBUG SLEEP`.
    public static func startPrivate() throws -> RedisTestServer {
        guard let binary = findExecutable("redis-server") else {
            throw RedisTestSetupError(description: "redis-server not found on PATH. The HubRedis tests need a real Redis: "
                + "apt-get install -y redis-server redis-tools (scripts/test installs it), or set DEVICEHUB_TEST_REDIS_URL.")
        }
        guard findExecutable("redis-cli") != nil else {
            throw RedisTestSetupError(description: "redis-cli not found on PATH: apt-get install -y redis-tools")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hubredis-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = RedisTestServer(binary: binary, port: try TestPorts.reserve(), directory: directory)
        do {
            try server.launch()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private init(external url: String, configuration: RedisConfiguration) {
        host = configuration.host
        port = configuration.port
        self.url = url
        self.configuration = configuration
        ownsProcess = false
        directory = nil
        binary = ""
    }

    private let binary: String

    private init(binary: String, port: Int, directory: URL) {
        self.binary = binary
        host = "127.0.0.1"
        self.port = port
        url = "redis://127.0.0.1:\(port)"
        configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        ownsProcess = true
        self.directory = directory
    }

    /// Starts the process and waits (up to 10 s) until it answers `PING`.
    public func launch() throws {
        guard ownsProcess, let directory else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", directory.path, "--daemonize", "no", "--enable-debug-command", "yes",
                       "--loglevel", "warning", "--logfile", directory.appendingPathComponent("redis.log").path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.ping(port: port) { return }
            if !p.isRunning { break }
            usleep(20_000)
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        throw RedisTestSetupError(description: "redis-server on port \(port) did not answer PING within 10 s. Log:\n\(log)")
    }

    /// SIGKILL, as a crash would: no FIN from a clean shutdown, no chance to flush anything.
    public func kill() {
        guard let p = process else { return }
        if p.isRunning {
            Glibc.kill(p.processIdentifier, SIGKILL)
            Glibc.kill(p.processIdentifier, SIGCONT)
            p.waitUntilExit()
        }
        process = nil
    }

    /// SIGSTOP: the process freezes with its sockets open. The kernel still accepts TCP
    /// connections into the backlog, but nothing is answered: a partition or a wedged server.
    public func freeze() {
        if let p = process, p.isRunning { Glibc.kill(p.processIdentifier, SIGSTOP) }
    }

    /// SIGCONT after `freeze()`.
    public func thaw() {
        if let p = process, p.isRunning { Glibc.kill(p.processIdentifier, SIGCONT) }
    }

    /// Starts the server again on the same port.
    public func restart() throws {
        kill()
        try launch()
    }

    /// Stops the server, removes its directory and gives its port back.
    public func stop() {
        kill()
        if let directory { try? FileManager.default.removeItem(at: directory) }
        // Once only: a second stop must not release a reservation someone else got since.
        if ownsProcess && !portReleased {
            portReleased = true
            TestPorts.release(port)
        }
    }
    private var portReleased = false

    /// Runs `redis-cli -u <url> args...` (an independent client), feeding `input` on stdin, and
    /// returns its standard output byte for byte.
    public func cli(_ args: [String], input: [UInt8]? = nil) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.findExecutable("redis-cli") ?? "/usr/bin/redis-cli")
        p.arguments = ["-u", url] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input)) }
        try inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw RedisTestSetupError(description: "redis-cli \(args) exited with \(p.terminationStatus)")
        }
        return Array(data)
    }

    public static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// One blocking `PING` over a plain socket with a 200 ms timeout.
    public static func ping(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return false }
        let ping = Array("PING\r\n".utf8)
        guard send(fd, ping, ping.count, Int32(MSG_NOSIGNAL)) == ping.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n >= 5 && Array(buffer[0..<5]) == Array("+PONG".utf8)
    }
}

