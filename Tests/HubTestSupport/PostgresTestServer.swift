import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL server for the tests: `initdb` into a temporary directory owned by the
/// `postgres` user, `pg_ctl start` on a loopback port reserved with `TestPorts` with the Unix
/// socket inside the same directory and `fsync=off` (nothing here needs durability), `pg_ctl
/// stop` at the end.
///
/// PostgreSQL refuses to run as root, so when the tests run as root (CI) every server command
/// runs through `runuser -u postgres`. If `DEVICEHUB_TEST_POSTGRES_URL` is set, that server is
/// used instead and nothing is started (the fault tests, which must stop the server, then fail
/// with a message saying so).
public final class PostgresTestServer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public let url: String
    public let port: Int
    public let external: Bool
    private let root: String?
    private let binDir: String?

    private init(url: String, port: Int, external: Bool, root: String?, binDir: String?) {
        self.url = url
        self.port = port
        self.external = external
        self.root = root
        self.binDir = binDir
    }

    /// Starts a server (or adopts `DEVICEHUB_TEST_POSTGRES_URL`). Throws with a message that says
    /// what to install when the server binaries are missing: the tests fail, never skip.
    public static func start() throws -> PostgresTestServer {
        if let url = ProcessInfo.processInfo.environment["DEVICEHUB_TEST_POSTGRES_URL"], !url.isEmpty {
            return PostgresTestServer(url: url, port: 0, external: true, root: nil, binDir: nil)
        }
        guard let bin = findBinDir() else {
            throw Failure(description: "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or $DEVICEHUB_POSTGRES_BINDIR. Install them: apt-get install -y postgresql (scripts/test does), or set DEVICEHUB_TEST_POSTGRES_URL to a server the tests may use.")
        }
        for tool in ["psql", "pgbench"] where which(tool) == nil && !FileManager.default.isExecutableFile(atPath: "\(bin)/\(tool)") {
            throw Failure(description: "\(tool) not found; install postgresql-client (apt-get install -y postgresql)")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("devicehub-pg-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if getuid() == 0 {
            // The data directory must belong to the user the server runs as.
            _ = try run("/bin/chown", ["postgres:postgres", root])
        }
        let port = try TestPorts.reserve()
        let server = PostgresTestServer(url: "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable", port: port, external: false, root: root, binDir: bin)
        do {
            _ = try server.runServerTool("initdb", ["-D", "\(root)/data", "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
            try server.startServer()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    /// `pg_ctl start` (also after `kill()`): same directory, same port.
    public func startServer() throws {
        guard let root else { throw Failure(description: "the test server is external (DEVICEHUB_TEST_POSTGRES_URL); it cannot be started or stopped by the tests") }
        _ = try runServerTool("pg_ctl", ["start", "-D", "\(root)/data", "-w", "-t", "30", "-l", "\(root)/server.log",
                                         "-o", "-p \(port) -k \(root) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"])
    }

    /// `pg_ctl stop -m immediate`: the server dies without a clean shutdown (like a crash).
    public func kill() throws {
        guard let root else { throw Failure(description: "the test server is external (DEVICEHUB_TEST_POSTGRES_URL); it cannot be stopped by the tests") }
        _ = try runServerTool("pg_ctl", ["stop", "-D", "\(root)/data", "-m", "immediate", "-w"])
    }

    /// Stops the server, removes its directory and gives its port back.
    public func stop() {
        guard let root else { return }
        _ = try? runServerTool("pg_ctl", ["stop", "-D", "\(root)/data", "-m", "fast", "-w"])
        try? FileManager.default.removeItem(atPath: root)
        // Once only: a second stop must not release a reservation someone else got since.
        if !portReleased {
            portReleased = true
            TestPorts.release(port)
        }
    }
    private var portReleased = false

    /// Runs `psql -Atc sql` against the server: an independent client to check what our client
    /// wrote. Returns stdout without the final newline.
    public func psql(_ sql: String) throws -> String {
        let tool = binDir.map { "\($0)/psql" } ?? which("psql") ?? "psql"
        let out = try Self.run(tool, ["-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql, url])
        return out.hasSuffix("\n") ? String(out.dropLast()) : out
    }

    /// Path of a server tool (pgbench).
    public func tool(_ name: String) -> String {
        binDir.map { "\($0)/\(name)" } ?? which(name) ?? name
    }

    // MARK: helpers

    private func runServerTool(_ name: String, _ args: [String]) throws -> String {
        let path = "\(binDir!)/\(name)"
        if getuid() == 0 {
            return try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", path] + args)
        }
        return try Self.run(path, args)
    }

    /// Runs a program to completion and returns its stdout; throws with its output when it
    /// exits non-zero. posix_spawn + waitpid rather than Foundation's Process, whose
    /// `waitUntilExit` can miss the exit of a child whose own child daemonizes (pg_ctl start
    /// under runuser) and hang the tests.
    @discardableResult
    public static func run(_ path: String, _ args: [String]) throws -> String {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("devicehub-run-\(UUID().uuidString).out").path
        let errPath = outPath + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Children start with no blocked signals and default dispositions: the Swift runtime's
        // threads block some, and a server (or pgbench's -T timer) must not inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw Failure(description: "cannot run \(path): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waitpid failed for \(path)") }
        }
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0 (the macros are not imported).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw Failure(description: "\(path) \(args.joined(separator: " ")) failed (wait status \(status)): \(stderr)\(stdout)")
        }
        return stdout
    }

    private static func findBinDir() -> String? {
        let fm = FileManager.default
        if let dir = ProcessInfo.processInfo.environment["DEVICEHUB_POSTGRES_BINDIR"], fm.isExecutableFile(atPath: "\(dir)/initdb") { return dir }
        let base = "/usr/lib/postgresql"
        let versions = ((try? fm.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted(by: >)
        for v in versions where fm.isExecutableFile(atPath: "\(base)/\(v)/bin/initdb") && fm.isExecutableFile(atPath: "\(base)/\(v)/bin/pg_ctl") {
            return "\(base)/\(v)/bin"
        }
        return nil
    }

    private func which(_ name: String) -> String? { Self.which(name) }

    private static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
