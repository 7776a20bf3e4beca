import ArgumentParser
import BenchSupport
import Foundation
import HubTelemetry
import HubHTTP
import HubHTTPClient
import HubIO
import HubWebSocket
import HubWebSocketIO
import Synchronization

/// `auth-bench`: the identity benchmark's client, for tools/bench/identity-bench.sh. Everything
/// goes through the hub's public API, as a device agent and a customer would use it:
///
///   setup      admin token → an org; a Supabase user (HS256 JWT from `hubctl mint-dev-jwt`)
///              made its operator; that user provisions D devices, each registered with its
///              activation code. Writes "device_id device_secret" lines to --devices.
///   token      POST /api/v1/device/auth for one device of the file; prints the token (for wrk).
///   handshake  C workers for T seconds; one iteration = POST /api/v1/device/auth on a new TCP
///              connection (200 with a token), then a WebSocket upgrade of /ws/device with
///              `Authorization: Bearer <token>` on another new connection, wait for the 101,
///              close (1000) and wait for the closing handshake to finish. Prints one JSON object.
///
/// The handshake loop runs on HubIO loops with callbacks (Connector + HTTPResponseParser for
/// the auth request, WebSocketClient for the upgrade): no task, thread or resolver per
/// iteration, so the client stays cheap next to the hub on a 2-core machine. Any status other
/// than 200 (auth) or 101 (upgrade), any connect failure, timeout or close other than 1000 is
/// an error; the run exits 1 when there was any.
struct AuthBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth-bench", abstract: "Device identity load client: setup through the public API, token, handshake rate.",
        subcommands: [Setup.self, Token.self, Handshake.self])
}

// MARK: - shared

struct Target: ParsableArguments {
    @Option(help: "Hub base URL, http://HOST:PORT.") var url = "http://127.0.0.1:8080"
    @Option(help: "File of \"device_id device_secret\" lines (written by setup, read by token and handshake).") var devices: String

    var hostPort: (host: String, port: Int) {
        get throws {
            guard url.hasPrefix("http://") else { throw ValidationError("--url must start with http:// (got \(url))") }
            var rest = url.dropFirst(7)
            while rest.hasSuffix("/") { rest = rest.dropLast() }
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
                throw ValidationError("--url needs an explicit port (got \(url))")
            }
            return (String(rest[..<colon]), port)
        }
    }

    var base: String { url.hasSuffix("/") ? String(url.dropLast()) : url }

    func readDevices() throws -> [(id: String, secret: String)] {
        let text = try String(contentsOfFile: devices, encoding: .utf8)
        let list = text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: " ")
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
        guard !list.isEmpty else { throw ValidationError("no devices in \(devices); run setup first") }
        return list
    }
}

/// A blocking request through HubHTTPClient (setup and token only: not the measured path).
func call(_ client: HTTPClient, _ method: HTTPMethod, _ url: String, bearer: String? = nil, json: [String: Any]? = nil,
          expect: Int) throws -> [String: Any] {
    var headers = HTTPHeaders()
    if let bearer { headers.add(name: "Authorization", value: "Bearer \(bearer)") }
    var body: [UInt8] = []
    if let json {
        headers.add(name: "Content-Type", value: "application/json")
        body = [UInt8](try JSONSerialization.data(withJSONObject: json))
    }
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var outcome: Result<HTTPClientResponse, any Error>?
    let requestBody = body, requestHeaders = headers
    Task {
        do { outcome = .success(try await client.request(method: method, url: url, headers: requestHeaders, body: requestBody)) }
        catch { outcome = .failure(error) }
        sem.signal()
    }
    sem.wait()
    let response = try outcome!.get()
    guard response.status == expect else {
        throw Failure("\(method) \(url): expected \(expect), got \(response.status): \(response.bodyText.prefix(300))")
    }
    guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
        throw Failure("\(method) \(url): body is not a JSON object: \(response.bodyText.prefix(300))")
    }
    return object
}

// MARK: - setup

struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an org, make a user its operator, provision and register devices.")
    @OptionGroup var target: Target
    @Option(help: "The hub's --admin-token.") var adminToken: String
    @Option(help: "A Supabase access token of the user (hubctl mint-dev-jwt --secret S --sub UUID).") var userJwt: String
    @Option(help: "The user's id: the token's sub.") var userId: String
    @Option(help: "Devices to provision and register.") var count = 64
    @Option(help: "Org name.") var orgName = "identity-bench"

    func run() throws {
        let client = try HTTPClient()
        defer { client.shutdown() }
        let base = target.base
        let org = try call(client, .post, "\(base)/api/v1/admin/orgs", bearer: adminToken, json: ["name": orgName], expect: 201)
        guard let orgID = org["id"] as? String else { throw Failure("org without id: \(org)") }
        _ = try call(client, .post, "\(base)/api/v1/admin/orgs/\(orgID)/members", bearer: adminToken,
                     json: ["user_id": userId, "role": "operator"], expect: 201)
        var lines = ""
        for i in 0..<count {
            let p = try call(client, .post, "\(base)/api/v1/customer/devices/provision", bearer: userJwt,
                             json: ["org_id": orgID, "name": "bench-\(i)"], expect: 201)
            guard let code = p["activation_code"] as? String else { throw Failure("provision without activation_code: \(p)") }
            let r = try call(client, .post, "\(base)/api/v1/device/register", json: ["activation_code": code, "name": "bench-\(i)"], expect: 201)
            guard let id = r["device_id"] as? String, let secret = r["device_secret"] as? String else {
                throw Failure("register without device_id/device_secret: \(r.keys.sorted())")
            }
            lines += "\(id) \(secret)\n"
        }
        try lines.write(toFile: target.devices, atomically: true, encoding: .utf8)
        Log.note("org \(orgID): \(count) devices provisioned and registered → \(target.devices)")
    }
}

// MARK: - token

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a device token (POST /api/v1/device/auth) for one device of the file.")
    @OptionGroup var target: Target
    @Option(help: "Which device of the file (0-based).") var index = 0

    func run() throws {
        let list = try target.readDevices()
        guard index >= 0 && index < list.count else { throw ValidationError("--index must be 0..<\(list.count)") }
        let client = try HTTPClient()
        defer { client.shutdown() }
        let grant = try call(client, .post, "\(target.base)/api/v1/device/auth",
                             json: ["device_id": list[index].id, "device_secret": list[index].secret], expect: 200)
        guard let token = grant["token"] as? String else { throw Failure("auth without token") }
        print(token)
    }
}

// MARK: - handshake

/// Counters of one loop: written by its loop, read by the main thread.
final class LoopStats: Sendable {
    let handshakes = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    @inline(__always) static func bump(_ a: borrowing Atomic<Int>) { a.store(a.load(ordering: .relaxed) &+ 1, ordering: .relaxed) }
}

/// What every worker of a run shares (immutable after start, except the two flags).
final class RunState: @unchecked Sendable {  // the options are set once, before the workers start
    let address: SocketAddress
    let hostField: String
    let wsOptions: WebSocketClient.Options
    let timeoutNanoseconds: UInt64
    /// Workers stop starting iterations once set.
    let stopping = Atomic<Bool>(false)
    /// Latencies are kept only while set (the measured window).
    let recording = Atomic<Bool>(false)
    let idle = Atomic<Int>(0)

    init(address: SocketAddress, hostField: String, wsOptions: WebSocketClient.Options, timeoutNanoseconds: UInt64) {
        self.address = address
        self.hostField = hostField
        self.wsOptions = wsOptions
        self.timeoutNanoseconds = timeoutNanoseconds
    }
}

/// Latency samples of one loop (loop thread only; read by the main thread after the workers stop).
final class Samples: @unchecked Sendable {
    var total: [UInt64] = []
    var auth: [UInt64] = []
    var upgrade: [UInt64] = []
    init() { total.reserveCapacity(1 << 16); auth.reserveCapacity(1 << 16); upgrade.reserveCapacity(1 << 16) }
}

/// One worker: one iteration at a time, on one loop.
final class Worker: WebSocketDelegate {
    let index: Int
    let loop: EventLoop
    let run: RunState
    let stats: LoopStats
    let samples: Samples
    /// Requests of this worker's devices (pre-encoded), used in turn.
    let requests: [[UInt8]]
    private var next = 0
    /// Bumped at each iteration's start and end: a callback of an older iteration is ignored.
    private var generation: UInt64 = 0
    private var watchdog: TimerHandle?
    private var phase = "idle"
    private var t0: UInt64 = 0
    private var tAuth: UInt64 = 0
    private var t101: UInt64 = 0
    private var authChannel: Channel?
    private var ws: WebSocketConnection?

    init(index: Int, loop: EventLoop, run: RunState, stats: LoopStats, samples: Samples, requests: [[UInt8]]) {
        self.index = index
        self.loop = loop
        self.run = run
        self.stats = stats
        self.samples = samples
        self.requests = requests
    }

    /// Loop thread only.
    func start() {
        if run.stopping.load(ordering: .relaxed) {
            phase = "idle"
            run.idle.add(1, ordering: .relaxed)
            return
        }
        generation &+= 1
        let gen = generation
        let request = requests[next % requests.count]
        next &+= 1
        t0 = monotonicNanoseconds()
        phase = "auth"
        watchdog = loop.schedule(after: run.timeoutNanoseconds) { [weak self] in
            guard let self, self.generation == gen else { return }
            self.fail(gen, "worker \(self.index): no progress in \(self.run.timeoutNanoseconds / 1_000_000_000) s (phase \(self.phase))")
        }
        Connector.connect(to: run.address, on: loop, makeHandler: { channel in
            self.authChannel = channel
            return AuthExchange(worker: self, generation: gen, request: request)
        }, onFailure: { error in self.fail(gen, "auth connect: \(error)") })
    }

    func authAnswered(_ gen: UInt64, status: Int, body: [UInt8]) {
        guard gen == generation else { return }
        authChannel = nil   // the server closes it (Connection: close); our side follows on EOF
        guard status == 200 else {
            return fail(gen, "POST /api/v1/device/auth: \(status) \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        guard let token = Self.token(in: body) else { return fail(gen, "POST /api/v1/device/auth: no token in the body") }
        tAuth = monotonicNanoseconds()
        phase = "upgrade"
        var options = run.wsOptions
        options.headers = [("Authorization", "Bearer " + token)]
        WebSocketClient.connect(options, on: loop, makeDelegate: { _ in self }) { result in
            guard gen == self.generation else {
                if case .success(let ws) = result { ws.close(.normal) }
                return
            }
            switch result {
            case .success(let ws):
                self.t101 = monotonicNanoseconds()
                self.ws = ws
                self.phase = "close"
                ws.close(.normal)
            case .failure(let error):
                self.fail(gen, "upgrade /ws/device: \(error)")
            }
        }
    }

    func authFailed(_ gen: UInt64, _ what: String) { fail(gen, "POST /api/v1/device/auth: \(what)") }

    // The upgrade's delegate: the iteration ends when the closing handshake has.
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {}
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        guard ws === self.ws else { return }
        self.ws = nil
        let gen = generation
        guard code == .normal else {
            return fail(gen, "/ws/device closed with \(code.map { "\($0)" } ?? "no code") (\(reason)), expected 1000")
        }
        finishIteration()
    }

    private func finishIteration() {
        watchdog?.cancel()
        watchdog = nil
        generation &+= 1
        LoopStats.bump(stats.handshakes)
        if run.recording.load(ordering: .relaxed) {
            samples.total.append(t101 &- t0)
            samples.auth.append(tAuth &- t0)
            samples.upgrade.append(t101 &- tAuth)
        }
        // Not re-entrant: the next connect starts from the loop's task queue.
        loop.execute { self.start() }
    }

    private func fail(_ gen: UInt64, _ what: String) {
        guard gen == generation else { return }
        watchdog?.cancel()
        watchdog = nil
        generation &+= 1
        LoopStats.bump(stats.errors)
        Problems.add(what)
        authChannel?.close(.immediately)
        authChannel = nil
        if let ws { self.ws = nil; ws.channel.close(.immediately) }
        // A short pause so that a hub refusing everything does not turn into a busy loop.
        loop.schedule(after: 10_000_000) { self.start() }
    }

    /// The `token` string of the auth response: `"token":"…"` (base64url, no escapes).
    static func token(in body: [UInt8]) -> String? {
        let key = Array("\"token\":\"".utf8)
        guard body.count > key.count else { return nil }
        var i = 0
        while i + key.count <= body.count {
            if body[i] == key[0] && Array(body[i..<(i + key.count)]) == key {
                let start = i + key.count
                guard let end = body[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
                return String(decoding: body[start..<end], as: UTF8.self)
            }
            i += 1
        }
        return nil
    }
}

/// One POST /api/v1/device/auth on its own connection.
final class AuthExchange: ChannelHandler {
    unowned let worker: Worker
    let generation: UInt64
    let request: [UInt8]
    private var parser = HTTPResponseParser(requestMethod: .post)
    private var done = false

    init(worker: Worker, generation: UInt64, request: [UInt8]) {
        self.worker = worker
        self.generation = generation
        self.request = request
    }

    func channelActive(_ channel: Channel) { channel.write(request) }

    func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer) {
        guard !done else { return }
        parser.append(UnsafeRawBufferPointer(bytes))
        deliver(channel)
    }

    func channelReadEOF(_ channel: Channel) {
        if !done {
            parser.finish()
            deliver(channel)
        }
        channel.close(.afterFlush)
    }

    func channelClosed(_ channel: Channel, error: Error?) {
        guard !done else { return }
        done = true
        worker.authFailed(generation, "connection closed before a response\(error.map { ": \($0)" } ?? "")")
    }

    private func deliver(_ channel: Channel) {
        switch parser.next() {
        case .needMoreData:
            return
        case .error(let error):
            done = true
            channel.close(.immediately)
            worker.authFailed(generation, "bad response: \(error)")
        case .response(let response):
            done = true
            worker.authAnswered(generation, status: response.status, body: response.body)
        }
    }
}


struct Handshake: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device handshakes/s: auth (new connection) + /ws/device upgrade with the token + 101 + close, C workers.")
    @OptionGroup var target: Target
    @Option(help: "Concurrent workers (each one iteration at a time, on its own devices when there are enough).") var concurrency = 32
    @Option(help: "Measured seconds.") var seconds = 10.0
    @Option(help: "Seconds of load before the measured window.") var warmup = 1.0
    @Option(help: "Event loop threads of the client.") var loops = 1
    @Option(help: "Seconds one iteration may take before it counts as an error.") var timeout = 10.0
    @Option(help: "PID of the hub, to read its CPU time (utime + stime) over the window.") var serverPid: Int32?
    @Option(help: "Comma-separated PIDs of the stores (redis-server, postgres processes): their CPU over the window, summed.")
    var storePids: String?

    func validate() throws {
        guard concurrency >= 1, seconds > 0, loops >= 1 else { throw ValidationError("--concurrency, --seconds and --loops must be positive") }
    }

    func run() throws {
        let list = try target.readDevices()
        let (host, port) = try target.hostPort
        let address = try SocketAddress.resolve(host: host, port: port)
        let hostField = "\(host):\(port)"
        var ws = WebSocketClient.Options(host: host, port: port)
        ws.path = "/ws/device"
        var settings = WebSocketSettings()
        settings.pingInterval = 1e9
        settings.idleTimeout = 1e9
        settings.closeTimeout = timeout
        ws.settings = settings
        let state = RunState(address: address, hostField: hostField, wsOptions: ws, timeoutNanoseconds: UInt64(timeout * 1e9))
        let requests: [[UInt8]] = list.map { d in
            let body = "{\"device_id\":\"\(d.id)\",\"device_secret\":\"\(d.secret)\"}"
            return Array(("POST /api/v1/device/auth HTTP/1.1\r\nHost: \(hostField)\r\nContent-Type: application/json\r\n"
                          + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8)
        }
        if list.count < concurrency {
            Log.note("only \(list.count) devices for \(concurrency) workers: workers share devices, and a device's newer socket replaces its older one (4509 counts as an error)")
        }
        _ = raiseFileDescriptorLimit()
        let group = try EventLoopGroup(count: loops, registry: nil)
        group.start()
        let stats = group.loops.map { _ in LoopStats() }
        let samples = group.loops.map { _ in Samples() }
        var workers: [Worker] = []
        for w in 0..<concurrency {
            let li = w % loops
            // Worker w uses devices w, w + C, w + 2C, …: no two workers share a device.
            let mine = stride(from: w % list.count, to: list.count, by: concurrency).map { requests[$0] }
            workers.append(Worker(index: w, loop: group.loops[li], run: state, stats: stats[li], samples: samples[li], requests: mine))
        }
        for worker in workers { worker.loop.execute { worker.start() } }

        func totals() -> (handshakes: Int, errors: Int) {
            (stats.reduce(0) { $0 + $1.handshakes.load(ordering: .relaxed) }, stats.reduce(0) { $0 + $1.errors.load(ordering: .relaxed) })
        }
        let storePIDs = (storePids ?? "").split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
        func storeCPU() -> Double? { storePIDs.isEmpty ? nil : storePIDs.reduce(0.0) { $0 + (processCPUSeconds($1) ?? 0) } }

        Thread.sleep(forTimeInterval: warmup)
        state.recording.store(true, ordering: .relaxed)
        let a = (t: monotonicNanoseconds(), n: totals(), hub: serverPid.flatMap(processCPUSeconds), store: storeCPU(), me: selfCPUSeconds())
        Thread.sleep(forTimeInterval: seconds)
        let b = (t: monotonicNanoseconds(), n: totals(), hub: serverPid.flatMap(processCPUSeconds), store: storeCPU(), me: selfCPUSeconds())
        state.recording.store(false, ordering: .relaxed)
        state.stopping.store(true, ordering: .relaxed)
        // Let iterations in flight finish (each is bounded by --timeout).
        let drainLimit = monotonicNanoseconds() + UInt64((timeout + 5) * 1e9)
        while state.idle.load(ordering: .relaxed) < concurrency && monotonicNanoseconds() < drainLimit { Thread.sleep(forTimeInterval: 0.01) }
        let stuck = concurrency - state.idle.load(ordering: .relaxed)
        if stuck > 0 { Problems.add("\(stuck) workers still busy \(timeout + 5) s after the window") }

        // Samples are read on their loops (the workers are idle now).
        var total: [UInt64] = [], auth: [UInt64] = [], upgrade: [UInt64] = []
        for (li, loop) in group.loops.enumerated() {
            let sem = DispatchSemaphore(value: 0)
            let s = samples[li]
            nonisolated(unsafe) var copy: ([UInt64], [UInt64], [UInt64]) = ([], [], [])
            loop.execute { copy = (s.total, s.auth, s.upgrade); sem.signal() }
            sem.wait()
            total += copy.0; auth += copy.1; upgrade += copy.2
        }
        total.sort(); auth.sort(); upgrade.sort()
        let elapsed = Double(b.t - a.t) / 1e9
        let handshakes = b.n.handshakes - a.n.handshakes
        let errors = totals().errors + (stuck > 0 ? stuck : 0)
        let hubCPU = a.hub.flatMap { x in b.hub.map { $0 - x } }
        let storeCPUSeconds = a.store.flatMap { x in b.store.map { $0 - x } }
        print(json([
            ("mode", "handshake"), ("concurrency", concurrency), ("devices", list.count), ("client_loops", loops),
            ("handshakes", handshakes), ("seconds", elapsed), ("handshakes_per_second", Double(handshakes) / elapsed),
            ("p50_ms", percentile(total, 0.5)), ("p99_ms", percentile(total, 0.99)),
            ("auth_p50_ms", percentile(auth, 0.5)), ("upgrade_p50_ms", percentile(upgrade, 0.5)),
            ("hub_cpu_seconds", hubCPU),
            ("hub_cpu_us_per_handshake", hubCPU.map { handshakes > 0 ? $0 * 1e6 / Double(handshakes) : .infinity }),
            ("store_cpu_seconds", storeCPUSeconds),
            ("store_cpu_us_per_handshake", storeCPUSeconds.map { handshakes > 0 ? $0 * 1e6 / Double(handshakes) : .infinity }),
            ("client_cpu_seconds", b.me - a.me),
            ("errors", errors), ("first_errors", Problems.list),
        ]))
        fflush(stdout)
        Foundation.exit(errors == 0 && handshakes > 0 ? 0 : 1)
    }
}

AuthBench.main()
