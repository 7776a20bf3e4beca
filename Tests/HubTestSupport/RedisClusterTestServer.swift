import Foundation
import HubRedis
#if canImport(Glibc)
import Glibc
#endif

/// A real three-master Redis Cluster for the tests: three `redis-server --cluster-enabled yes`
/// child processes on ports reserved with `TestPorts`, each in a temporary directory with no
/// persistence, joined by `redis-cli --cluster create … --cluster-replicas 0`, ready once every
/// node reports `cluster_state:ok` and serves all 16,384 slots. Missing `redis-server` or
/// `redis-cli` is an error, never a skip.
public final class RedisClusterTestServer: @unchecked Sendable {
    // @unchecked: `processes` and `binary` are written while starting (one thread, before the
    // server is handed out), by `restart(port:)` (fault tests on a private cluster, one thread)
    // and by `stop()`, which the owner calls once at the end.

    public let ports: [Int]
    /// The cluster bus port of each node, in the order of `ports`.
    private let busPorts: [Int]
    /// `redis+cluster://127.0.0.1:<first port>`: what the hub is configured with.
    public let url: String
    public let configuration: RedisConfiguration
    private let directory: URL
    private var processes: [Process] = []
    private let redisCLI: String

    public static let masters = 3

    /// Starts the nodes, creates the cluster and waits (up to 30 s) until it is ready.
    /// `requireFullCoverage: false` lets the masters keep serving their slots while another
    /// master is down (`cluster-require-full-coverage no`), for fault tests.
    public static func start(requireFullCoverage: Bool = true) throws -> RedisClusterTestServer {
        guard let server = RedisTestServer.findExecutable("redis-server") else {
            throw RedisTestSetupError(description: "redis-server not found on PATH. The Redis Cluster tests need a real Redis: "
                + "apt-get install -y redis-server redis-tools (scripts/test installs it).")
        }
        guard let cli = RedisTestServer.findExecutable("redis-cli") else {
            throw RedisTestSetupError(description: "redis-cli not found on PATH: apt-get install -y redis-tools")
        }
        // Each node needs a second port for the cluster bus: reserved too and passed with
        // `--cluster-port` (the default, port + 10000, may be anyone's ephemeral port).
        var reserved: [Int] = []
        do {
            for _ in 0..<(2 * masters) { reserved.append(try TestPorts.reserve()) }
        } catch {
            for port in reserved { TestPorts.release(port) }
            throw error
        }
        let ports = Array(reserved[..<masters])
        let busPorts = Array(reserved[masters...])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hubredis-cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cluster = RedisClusterTestServer(ports: ports, busPorts: busPorts, directory: directory, redisCLI: cli,
                                             requireFullCoverage: requireFullCoverage)
        do {
            try cluster.launch(binary: server)
            try cluster.create()
        } catch {
            cluster.stop()
            throw error
        }
        return cluster
    }

    private let requireFullCoverage: Bool

    private init(ports: [Int], busPorts: [Int], directory: URL, redisCLI: String, requireFullCoverage: Bool) {
        self.requireFullCoverage = requireFullCoverage
        self.ports = ports
        self.busPorts = busPorts
        self.directory = directory
        self.redisCLI = redisCLI
        url = "redis+cluster://127.0.0.1:\(ports[0])"
        var configuration = RedisConfiguration(host: "127.0.0.1", port: ports[0])
        configuration.cluster = true
        self.configuration = configuration
    }

    private func launch(binary: String) throws {
        self.binary = binary
        for port in ports {
            processes.append(try launchNode(port: port))
        }
        for (port, p) in zip(ports, processes) { try waitForPing(port: port, p) }
    }

    private var binary = ""

    /// Starts one node; its directory (and `nodes.conf`, so its identity and slots) survive a
    /// restart.
    private func launchNode(port: Int) throws -> Process {
        let dir = directory.appendingPathComponent("\(port)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        let busPort = busPorts[ports.firstIndex(of: port)!]
        p.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-port", "\(busPort)",
                       "--cluster-config-file", dir.appendingPathComponent("nodes.conf").path,
                       "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                       "--dir", dir.path, "--daemonize", "no", "--enable-debug-command", "yes",
                       "--cluster-require-full-coverage", requireFullCoverage ? "yes" : "no",
                       "--loglevel", "warning", "--logfile", dir.appendingPathComponent("redis.log").path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    private func waitForPing(port: Int, _ p: Process) throws {
        let deadline = Date().addingTimeInterval(10)
        while !RedisTestServer.ping(port: port) {
            guard Date() < deadline, p.isRunning else {
                throw RedisTestSetupError(description: "cluster node on port \(port) did not answer PING within 10 s. Log:\n\(log(port))")
            }
            usleep(20_000)
        }
    }

    /// SIGKILL of the master on `port`, for good (until `restart(port:)`).
    public func kill(port: Int) {
        guard let i = ports.firstIndex(of: port), processes[i].isRunning else { return }
        Glibc.kill(processes[i].processIdentifier, SIGKILL)
        processes[i].waitUntilExit()
    }

    /// SIGKILL of the master on `port` (a crash: its data is gone, there is no persistence),
    /// then a start on the same port with the same `nodes.conf`, so it rejoins with its
    /// identity and slots; returns once the cluster is whole again. For fault tests on a
    /// cluster of their own (the shared one serves concurrent tests).
    public func restart(port: Int) throws {
        guard let i = ports.firstIndex(of: port) else { return }
        let old = processes[i]
        if old.isRunning {
            Glibc.kill(old.processIdentifier, SIGKILL)
            old.waitUntilExit()
        }
        processes[i] = try launchNode(port: port)
        try waitForPing(port: port, processes[i])
        try waitUntilReady()
    }

    /// `redis-cli --cluster create`, then waits until every node agrees the cluster is whole.
    private func create() throws {
        let nodes = ports.map { "127.0.0.1:\($0)" }
        _ = try Self.run(redisCLI, ["--cluster", "create"] + nodes + ["--cluster-replicas", "0", "--cluster-yes"])
        try waitUntilReady()
    }

    /// Waits (up to 30 s) until every node reports the cluster whole.
    private func waitUntilReady() throws {
        let deadline = Date().addingTimeInterval(30)
        while true {
            var ready = true
            for port in ports {
                let info = (try? cli(port: port, ["CLUSTER", "INFO"])) ?? ""
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") || !info.contains("cluster_known_nodes:\(ports.count)") {
                    ready = false
                }
            }
            if ready { return }
            guard Date() < deadline else {
                throw RedisTestSetupError(description: "Redis Cluster on ports \(ports) not ready within 30 s. Log of the first node:\n\(log(ports[0]))")
            }
            usleep(100_000)
        }
    }

    /// Runs `redis-cli -h 127.0.0.1 -p <port> args...` (no `-c`: redirects are returned as
    /// they are) and returns its standard output.
    public func cli(port: Int, _ args: [String]) throws -> String {
        try Self.run(redisCLI, ["-h", "127.0.0.1", "-p", "\(port)"] + args)
    }

    /// `CLUSTER KEYSLOT key` as the server computes it.
    public func keyslot(_ key: String) throws -> Int {
        let out = try cli(port: ports[0], ["CLUSTER", "KEYSLOT", key]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let slot = Int(out) else { throw RedisTestSetupError(description: "CLUSTER KEYSLOT \(key) answered '\(out)'") }
        return slot
    }

    /// The port of the master serving `slot`, as the node on `askedPort` sees it.
    public func port(servingSlot slot: Int, askedPort: Int? = nil) throws -> Int {
        try ports(servingSlots: [slot], askedPort: askedPort)[0]
    }

    /// The ports of the masters serving `slots`, from one `CLUSTER NODES`.
    public func ports(servingSlots slots: [Int], askedPort: Int? = nil) throws -> [Int] {
        let nodes = try cli(port: askedPort ?? ports[0], ["CLUSTER", "NODES"])
        var owners: [(ranges: [ClosedRange<Int>], port: Int)] = []
        for line in nodes.split(separator: "\n").map(String.init) where line.contains("master") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let colon = fields[1].lastIndex(of: ":"),
                  let port = Int(fields[1][fields[1].index(after: colon)...].prefix { $0.isNumber }) else { continue }
            owners.append((Self.slotRanges(in: line), port))
        }
        return try slots.map { slot in
            guard let owner = owners.first(where: { $0.ranges.contains { $0.contains(slot) } }) else {
                throw RedisTestSetupError(description: "no master serves slot \(slot)")
            }
            return owner.port
        }
    }

    /// The node id of the master on `port`.
    public func nodeID(port: Int) throws -> String {
        try cli(port: port, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Slot ranges (`0-5460`, `7`) listed at the end of a `CLUSTER NODES` line; migration
    /// markers (`[7->-id]`) are skipped.
    static func slotRanges(in line: String) -> [ClosedRange<Int>] {
        line.split(separator: " ").dropFirst(8).compactMap { field in
            if field.hasPrefix("[") { return nil }
            let bounds = field.split(separator: "-")
            guard let first = bounds.first.flatMap({ Int($0) }), let last = bounds.last.flatMap({ Int($0) }) else { return nil }
            return first...last
        }
    }

    /// Kills the nodes, removes their directories and gives the ports back. Once only.
    public func stop() {
        for p in processes where p.isRunning {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        processes = []
        try? FileManager.default.removeItem(at: directory)
        if !portsReleased {
            portsReleased = true
            for port in ports + busPorts { TestPorts.release(port) }
        }
    }
    private var portsReleased = false

    private func log(_ port: Int) -> String {
        (try? String(contentsOf: directory.appendingPathComponent("\(port)/redis.log"), encoding: .utf8)) ?? ""
    }

    static func run(_ executable: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw RedisTestSetupError(description: "\(executable) \(args.joined(separator: " ")) exited with \(p.terminationStatus): "
                + String(decoding: errors, as: UTF8.self) + String(decoding: data, as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }
}
