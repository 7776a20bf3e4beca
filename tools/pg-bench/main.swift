// pg-bench: HubPostgres's pool against pgbench on the same server, in one invocation.
//
//   pg-bench --url postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//            --seconds 10 --concurrency 16 --connections 16 --loops 1
//
// 1. `pgbench -i -s SCALE URL` (unless --skip-init): creates pgbench_accounts.
// 2. Our pool: `SELECT abalance FROM pgbench_accounts WHERE aid = $1` with a random aid, like
//    `pgbench -S`, `--concurrency` statements in flight for `--seconds` (after a 1 s warm-up).
//    Once through the loop-callback API (each completion issues the next statement on the
//    loop) and once through the async API (one Task per in-flight slot).
// 3. `pgbench -S -c CONCURRENCY -j 1 -T SECONDS URL` against the same server and table.
// Prints queries/s for each and the ratio to pgbench.
import Foundation
import HubIO
import HubPostgres
import HubTelemetry

struct Options {
    var url = ProcessInfo.processInfo.environment["DEVICEHUB_POSTGRES_URL"] ?? ""
    var seconds = 10
    var concurrency = 16
    var connections = 16
    var loops = 1
    /// Loops the pool's connections live on (the first N of `loops`); 0 = all. Callers are
    /// always spread over all `loops`, like the hub's HTTP connections.
    var poolLoops = 0
    var scale = 1
    var pgbench = "pgbench"
    var skipInit = false
    var skipPgbench = false
    var apis = ["callback", "async"]

    static func parse() -> Options {
        var o = Options()
        var args = CommandLine.arguments.dropFirst().makeIterator()
        func value(_ flag: String) -> String {
            guard let v = args.next() else { fail("\(flag) needs a value") }
            return v
        }
        while let a = args.next() {
            switch a {
            case "--url": o.url = value(a)
            case "--seconds": o.seconds = Int(value(a)) ?? o.seconds
            case "--concurrency": o.concurrency = Int(value(a)) ?? o.concurrency
            case "--connections": o.connections = Int(value(a)) ?? o.connections
            case "--loops": o.loops = Int(value(a)) ?? o.loops
            case "--pool-loops": o.poolLoops = Int(value(a)) ?? o.poolLoops
            case "--scale": o.scale = Int(value(a)) ?? o.scale
            case "--pgbench": o.pgbench = value(a)
            case "--skip-init": o.skipInit = true
            case "--skip-pgbench": o.skipPgbench = true
            case "--api": o.apis = value(a).split(separator: ",").map(String.init)
            case "-h", "--help":
                print("usage: pg-bench --url URL [--seconds 10] [--concurrency 16] [--connections 16] [--loops 1] [--pool-loops all] [--scale 1] [--api callback,async] [--pgbench PATH] [--skip-init] [--skip-pgbench]")
                exit(0)
            default: fail("unknown argument \(a)")
            }
        }
        if o.url.isEmpty { fail("--url (or DEVICEHUB_POSTGRES_URL) is required") }
        return o
    }
}

/// CPU seconds (user + system) used so far by this process or by its waited-for children.
func cpuSeconds(children: Bool = false) -> Double {
    var usage = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &usage)
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(usage.ru_utime) + s(usage.ru_stime)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("pg-bench: \(message)\n".utf8))
    exit(1)
}

/// Runs a program, returns its stdout+stderr; exits on failure. posix_spawn with an empty
/// signal mask and default dispositions: the Swift runtime's threads block signals, a child
/// inherits the spawning thread's mask, and pgbench's `-T` ends on SIGALRM: inherited
/// blocked, it would run forever.
func run(_ argv: [String]) -> String {
    let outPath = NSTemporaryDirectory() + "pg-bench-\(getpid())-\(UUID().uuidString).out"
    defer { unlink(outPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
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
    let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, environ)
    guard rc == 0 else { fail("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    if status != 0 { fail("\(argv.joined(separator: " ")) failed (wait status \(status)):\n\(out)") }
    return out
}

/// Counts completions; the loops and tasks add to it, the main thread reads it.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private var failed = 0
    private(set) var firstError: PostgresError?
    var counting = false
    var stop = false

    func record(_ result: Result<PostgresRows, PostgresError>) {
        lock.lock()
        switch result {
        case .success: if counting { done += 1 }
        case .failure(let e): failed += 1; if firstError == nil { firstError = e }
        }
        lock.unlock()
    }

    var snapshot: (done: Int, failed: Int, stop: Bool) {
        lock.lock(); defer { lock.unlock() }
        return (done, failed, stop)
    }

    func set(counting: Bool? = nil, stop: Bool? = nil) {
        lock.lock()
        if let counting { self.counting = counting }
        if let stop { self.stop = stop }
        lock.unlock()
    }
}

/// A per-slot xorshift generator: `Int64.random` would make a getrandom(2) call per statement,
/// which is harness cost, not client cost (pgbench uses its own PRNG too).
struct XorShift {
    var state: UInt64
    mutating func next(below n: Int) -> Int64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Int64(state % UInt64(n)) + 1
    }
}

let options = Options.parse()
let rows = 100_000 * options.scale
let sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"

if !options.skipInit {
    print("pgbench -i -s \(options.scale) (initializing pgbench_accounts)...")
    _ = run([options.pgbench, "-i", "-q", "-s", "\(options.scale)", options.url])
}

let group = try EventLoopGroup(count: options.loops, registry: nil)
group.start()
var config = PostgresPoolConfiguration(url: options.url)
config.maxConnections = options.connections
config.minConnections = options.connections
config.maxWaiters = max(options.concurrency * 2, 256)
let registry = MetricsRegistry(loops: options.loops)
let poolLoops = options.poolLoops > 0 ? Array(group.loops.prefix(options.poolLoops)) : group.loops
let pool = PostgresPool(configuration: config, loops: poolLoops, metrics: registry)

func waitUntilReady() {
    let end = Date().addingTimeInterval(10)
    while Date() < end {
        if pool.isHealthy && pool.statistics.open >= options.connections && pool.statistics.connecting == 0 { return }
        usleep(20_000)
    }
    fail("pool did not connect \(options.connections) connections: healthy=\(pool.isHealthy) \(pool.statistics)")
}

/// Drives `concurrency` statements through the callback API: each completion (on its loop)
/// issues the next one, so nothing but the pool and the loops is measured.
func benchCallback() -> (qps: Double, failed: Int, cpuPerQuery: Double) {
    let tally = Tally()
    for i in 0..<options.concurrency {
        let loop = group.loops[i % group.loops.count]
        var random = XorShift(state: UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15)
        func next() {
            pool.query(sql, [.int(random.next(below: rows))], on: loop) { result in
                tally.record(result)
                if !tally.snapshot.stop { next() }
            }
        }
        loop.execute { next() }
    }
    return measure(tally)
}

/// The same through the async API: one Task per in-flight slot.
func benchAsync() -> (qps: Double, failed: Int, cpuPerQuery: Double) {
    let tally = Tally()
    for i in 0..<options.concurrency {
        Task.detached {
            var random = XorShift(state: UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15)
            while !tally.snapshot.stop {
                do throws(PostgresError) {
                    let r = try await pool.query(sql, [.int(random.next(below: rows))])
                    tally.record(.success(r))
                } catch {
                    tally.record(.failure(error))
                }
            }
        }
    }
    return measure(tally)
}

func measure(_ tally: Tally) -> (qps: Double, failed: Int, cpuPerQuery: Double) {
    sleep(1) // warm-up
    tally.set(counting: true)
    let start = Date()
    let cpuBefore = cpuSeconds()
    let before = tally.snapshot.done
    Thread.sleep(forTimeInterval: Double(options.seconds))
    let after = tally.snapshot.done
    let cpu = cpuSeconds() - cpuBefore
    let elapsed = Date().timeIntervalSince(start)
    tally.set(stop: true)
    // Let the in-flight statements finish before the next phase.
    Thread.sleep(forTimeInterval: 0.5)
    if let e = tally.firstError { print("  first error: \(e)") }
    return (Double(after - before) / elapsed, tally.snapshot.failed, cpu / Double(max(after - before, 1)))
}

waitUntilReady()
// Sanity: the statement works and returns a row.
let sample = try await pool.query(sql, [.int(1)])
guard sample.count == 1 else { fail("pgbench_accounts has no aid = 1: run without --skip-init") }

print("server: \(try await pool.query("SELECT version()")[0].decode(String.self, at: 0))")
print("HubPostgres: \(options.connections) connections on \(poolLoops.count) of \(options.loops) loop(s) (callers on all), \(options.concurrency) in flight, \(options.seconds) s per run, scale \(options.scale)")
var ours: [(String, Double)] = []
for api in options.apis {
    let r = api == "async" ? benchAsync() : benchCallback()
    print(String(format: "  %-8@ %10.0f queries/s  client CPU %5.1f µs/query  (%d failed)", api as NSString, r.qps, r.cpuPerQuery * 1e6, r.failed))
    ours.append((api, r.qps))
}
let latency = registry.render().split(separator: "\n").filter { $0.hasPrefix("devicehub_postgres_query_seconds_sum") || $0.hasPrefix("devicehub_postgres_query_seconds_count") }
let sum = latency.first { $0.hasPrefix("devicehub_postgres_query_seconds_sum") }.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
let count = latency.first { $0.hasPrefix("devicehub_postgres_query_seconds_count") }.flatMap { Double($0.split(separator: " ")[1]) } ?? 1
print(String(format: "  mean latency through the pool: %.3f ms", sum / max(count, 1) * 1000))
await pool.shutdown()
group.stopAndJoin()
if options.skipPgbench { exit(0) }

print("pgbench -S -c \(options.concurrency) -j 1 -T \(options.seconds) (simple protocol, its default)...")
let childCPUBefore = cpuSeconds(children: true)
let out = run([options.pgbench, "-n", "-S", "-c", "\(options.concurrency)", "-j", "1", "-T", "\(options.seconds)", options.url])
let pgbenchCPU = cpuSeconds(children: true) - childCPUBefore
guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
      let tps = Double(line.dropFirst(6).split(separator: " ")[0]) else { fail("cannot read pgbench's tps from:\n\(out)") }
print(String(format: "  pgbench  %10.0f queries/s  client CPU %5.1f µs/query", tps, pgbenchCPU / (tps * Double(options.seconds)) * 1e6))
for (api, qps) in ours {
    print(String(format: "ratio HubPostgres(%@)/pgbench = %.2f", api as NSString, qps / tps))
}
