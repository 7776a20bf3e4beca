// redis-bench: throughput of HubRedis on one event loop, next to `redis-benchmark` against the
// same server in the same invocation.
//
//   redis-bench [--url redis://127.0.0.1:6379] [--requests 1000000] [--depth 16] [--connections 50]
//               [--tests set,get,evalsha] [--no-redis-benchmark]
//
// Without --url it starts its own redis-server (free port, no persistence, temp dir) and stops
// it at the end. Pipelining: each connection keeps `depth` commands in flight; every reply sends
// the next command, so replies read in one loop iteration leave as one write at its end. The
// reference is `redis-benchmark -P <depth> -t set,get -n <requests> -q` (its default 50 clients,
// hence our default of 50 connections, all on one loop). Besides ops/s it prints CPU µs per op of
// each client, the fairer figure on a machine shared with other work.
// Build with `swift build -c release --product redis-bench`.
import Foundation
import HubIO
import HubRedis
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var url: String?
    var requests = 1_000_000
    var depth = 16
    /// redis-benchmark's default client count, so both sides keep the same number in flight.
    var connections = 50
    var runRedisBenchmark = true
    /// Which of our tests to run (`set`, `get`, `evalsha`).
    var tests: Set<String> = ["set", "get", "evalsha"]

    init(_ args: [String]) {
        var it = args.dropFirst().makeIterator()
        while let arg = it.next() {
            func value() -> String {
                guard let v = it.next() else { fail("\(arg) needs a value") }
                return v
            }
            switch arg {
            case "--url": url = value()
            case "--requests", "-n": requests = Int(value()) ?? { fail("--requests: not a number") }()
            case "--depth", "-P": depth = Int(value()) ?? { fail("--depth: not a number") }()
            case "--connections", "-c": connections = Int(value()) ?? { fail("--connections: not a number") }()
            case "--no-redis-benchmark": runRedisBenchmark = false
            case "--tests", "-t": tests = Set(value().lowercased().split(separator: ",").map(String.init))
            case "-h", "--help":
                print("usage: redis-bench [--url URL] [--requests N] [--depth N] [--connections N] [--tests set,get,evalsha] [--no-redis-benchmark]")
                exit(0)
            default: fail("unknown argument \(arg)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("redis-bench: \(message)\n".utf8))
    exit(2)
}

/// A throwaway redis-server for the run.
final class LocalRedis {
    let port: Int
    let process: Process
    let directory: String

    init() {
        guard let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            fail("redis-server not found (apt-get install -y redis-server redis-tools), or pass --url")
        }
        port = LocalRedis.freePort()
        directory = NSTemporaryDirectory() + "redis-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", directory, "--daemonize", "no", "--loglevel", "warning"]
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { fail("cannot start redis-server: \(error)") }
    }

    /// A port that was free a moment ago: bind to 0 and read it back.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        if !ok { fail("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// CPU time (user + system) in microseconds of this process, or of its reaped children.
func cpuMicroseconds(_ who: Int32) -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(who), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

/// A throughput and what it cost: ops/s (wall clock) and CPU µs per op of the client process.
/// The second is what to compare on a machine shared with other work, where wall-clock rates of
/// two runs a few seconds apart can differ by 2×.
struct Rate {
    var opsPerSecond: Double
    var cpuMicrosPerOp: Double
}

/// Runs `total` commands made by `make` over `clients`, `depth` in flight each.
func measure(_ name: String, clients: [RedisClient], loop: EventLoop, total: Int, depth: Int,
             make: @escaping (Int) -> [RedisArgument], eval: ((RedisClient, Int, @escaping RedisCompletion) -> Void)? = nil) -> Rate {
    let done = DispatchSemaphore(value: 0)
    let cpuBefore = cpuMicroseconds(RUSAGE_SELF.rawValue)
    let started = monotonicNanoseconds()
    loop.execute {
        var sent = 0
        var completed = 0
        var failures = 0
        func next(_ client: RedisClient) {
            guard sent < total else { return }
            let i = sent
            sent += 1
            let completion: RedisCompletion = { result in
                if case .failure = result { failures += 1 }
                completed += 1
                if completed == total {
                    if failures > 0 { print("  \(name): \(failures) failures") }
                    done.signal()
                } else {
                    next(client)
                }
            }
            if let eval { eval(client, i, completion) } else { client.send(make(i), completion: completion) }
        }
        for client in clients { for _ in 0..<depth { next(client) } }
    }
    done.wait()
    let seconds = Double(monotonicNanoseconds() - started) / 1e9
    return Rate(opsPerSecond: Double(total) / seconds, cpuMicrosPerOp: (cpuMicroseconds(RUSAGE_SELF.rawValue) - cpuBefore) / Double(total))
}

/// Runs redis-benchmark and returns its requests/s per test name (`SET`, `GET`), and its CPU µs
/// per request over both tests.
func redisBenchmark(host: String, port: Int, password: String?, requests: Int, depth: Int, command: [String] = []) -> ([String: Double], Double) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-benchmark")
    var args = ["-h", host, "-p", "\(port)", "-P", "\(depth)", "-n", "\(requests)", "-q"]
    args += command.isEmpty ? ["-t", "set,get"] : command
    if let password { args += ["-a", password] }
    p.arguments = args
    print("$ redis-benchmark " + args.joined(separator: " "))
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    let cpuBefore = cpuMicroseconds(RUSAGE_CHILDREN.rawValue)
    do { try p.run() } catch { fail("cannot run redis-benchmark: \(error)") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let cpuPerOp = (cpuMicroseconds(RUSAGE_CHILDREN.rawValue) - cpuBefore) / Double((command.isEmpty ? 2 : 1) * requests)
    var results: [String: Double] = [:]
    // Lines look like "SET: 512820.53 requests per second, p50=1.271 msec" (with \r progress).
    for raw in String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
        let line = raw.trimmingCharacters(in: .whitespaces)
        // The last ": " ends the name (a custom command's name may hold colons: key:__rand_int__).
        guard line.contains("requests per second"), let colon = line.range(of: ": ", options: .backwards)?.lowerBound else { continue }
        // A custom command's line starts with the whole command: keep its name only.
        let name = String(line[..<colon].split(separator: " ").first ?? "").uppercased()
        let number = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).split(separator: " ").first
        if let number, let value = Double(number) { results[name] = value; print("  " + line) }
    }
    return (results, cpuPerOp)
}

let options = Options(CommandLine.arguments)
var local: LocalRedis?
let configuration: RedisConfiguration
if let url = options.url {
    do { configuration = try RedisConfiguration(url: url) } catch { fail("\(error)") }
} else {
    let server = LocalRedis()
    local = server
    configuration = RedisConfiguration(host: "127.0.0.1", port: server.port)
}

let group = try EventLoopGroup(count: 1, registry: nil)
group.start()
let loop = group.loops[0]
let clients = (0..<options.connections).map { _ in RedisClient(configuration: configuration, loop: loop) }
clients.forEach { $0.start() }
let deadline = Date().addingTimeInterval(10)
while !clients.allSatisfy(\.isConnected) {
    if Date() > deadline { local?.stop(); fail("could not connect to \(configuration.host):\(configuration.port)") }
    usleep(10_000)
}

print("HubRedis on one loop: \(options.connections) connection(s), depth \(options.depth), \(options.requests) requests per test")
let value = RedisArgument("xxx")  // redis-benchmark's default 3-byte payload
// Warm up (connections, allocator, the script cache).
let script = RedisScript("return redis.call('SET', KEYS[1], ARGV[1])")
_ = measure("warmup", clients: clients, loop: loop, total: 20_000, depth: options.depth, make: { _ in ["SET", "key:__rand_int__", value] })
_ = measure("warmup-eval", clients: clients, loop: loop, total: 1_000, depth: 1, make: { _ in [] },
            eval: { c, _, done in c.eval(script, keys: ["key:__rand_int__"], args: [value], completion: done) })

var ours: [(String, Rate)] = []
if options.tests.contains("set") {
    ours.append(("SET", measure("SET", clients: clients, loop: loop, total: options.requests, depth: options.depth,
                                make: { _ in ["SET", "key:__rand_int__", value] })))
}
if options.tests.contains("get") {
    ours.append(("GET", measure("GET", clients: clients, loop: loop, total: options.requests, depth: options.depth,
                                make: { _ in ["GET", "key:__rand_int__"] })))
}
if options.tests.contains("evalsha") {
    ours.append(("EVALSHA", measure("EVALSHA", clients: clients, loop: loop, total: options.requests, depth: options.depth, make: { _ in [] },
                                    eval: { c, _, done in c.eval(script, keys: ["key:__rand_int__"], args: [value], completion: done) })))
}
var commandsSent = 0
var flushes = 0
for client in clients {
    let s = await client.statistics()
    commandsSent += s.commands
    flushes += s.writeEvents
}
clients.forEach { $0.close() }
for (name, rate) in ours {
    print(String(format: "  HubRedis %-8@ %10.0f ops/s  %5.2f CPU µs/op", name as NSString, rate.opsPerSecond, rate.cpuMicrosPerOp))
}
print(String(format: "  pipelining: %d commands in %d writes (%.1f per write)", commandsSent, flushes, Double(commandsSent) / Double(max(flushes, 1))))

if options.runRedisBenchmark {
    var (reference, theirCPU) = redisBenchmark(host: configuration.host, port: configuration.port, password: configuration.password,
                                               requests: options.requests, depth: options.depth)
    if options.tests.contains("evalsha") {
        // The same script by its SHA1 (loaded by our warm-up), same key and value.
        let (evalRate, _) = redisBenchmark(host: configuration.host, port: configuration.port, password: configuration.password,
                                           requests: options.requests, depth: options.depth,
                                           command: ["EVALSHA", script.sha1, "1", "key:__rand_int__", "xxx"])
        reference.merge(evalRate) { a, _ in a }
    }
    print(String(format: "  redis-benchmark: %.2f CPU µs/op (SET and GET together)", theirCPU))
    print("")
    print("test      HubRedis ops/s   redis-benchmark ops/s   ratio")
    for (name, rate) in ours {
        if let theirs = reference[name] {
            print(String(format: "%-8@ %14.0f %21.0f %9.2fx", name as NSString, rate.opsPerSecond, theirs, rate.opsPerSecond / theirs))
        } else {
            print(String(format: "%-8@ %14.0f %21@ %10@", name as NSString, rate.opsPerSecond, "-" as NSString, "-" as NSString))
        }
    }
    let setGet = ours.filter { $0.0 == "SET" || $0.0 == "GET" }
    if !setGet.isEmpty {
        let ourCPU = setGet.map(\.1.cpuMicrosPerOp).reduce(0, +) / Double(setGet.count)
        print(String(format: "CPU per op, SET+GET: HubRedis %.2f µs, redis-benchmark %.2f µs (efficiency ratio %.2fx)", ourCPU, theirCPU, theirCPU / ourCPU))
    }
}
group.stopAndJoin()
local?.stop()
