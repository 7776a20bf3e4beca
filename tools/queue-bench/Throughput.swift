import BenchSupport
import ArgumentParser
import Foundation
import HubHTTP
import HubIO
import Synchronization

/// What the lanes of a run share.
final class RunControl: Sendable {
    /// Lanes stop proposing once set.
    let stopping = Atomic<Bool>(false)
    /// Latency samples are kept only while set (the measured window).
    let recording = Atomic<Bool>(false)
}

/// One loop's share of a throughput run: its devices, its proposer connections, and a window
/// of commands in flight (proposed and not yet acknowledged as a result). A proposal goes to
/// the next device of the lane in turn, into that device's approved session, with the
/// auto-approved kind: the hub queues it at once and announces it on the device's socket.
/// Loop thread only (the counters are read by the main thread).
final class ThroughputLane: AgentOwner {
    let loop: EventLoop
    let agents: [DeviceAgent]
    let counters: LoopCounters
    let control: RunControl
    let window: Int
    let apiKey: String
    let kind: String
    private var idle: [KeepAliveConnection]
    private var outstanding = 0
    private var next = 0
    private var seq = 0
    /// Proposal send times by command id (from the 201), and result times of commands whose
    /// result came before their 201 was read.
    private var sentAt: [String: UInt64] = [:]
    private var doneEarly: [String: UInt64] = [:]
    var proposeSamples: [UInt64] = []
    var endToEndSamples: [UInt64] = []

    init(loop: EventLoop, agents: [DeviceAgent], counters: LoopCounters, control: RunControl, proposers: [KeepAliveConnection],
         window: Int, apiKey: String, kind: String) {
        self.loop = loop
        self.agents = agents
        self.counters = counters
        self.control = control
        self.idle = proposers
        self.window = window
        self.apiKey = apiKey
        self.kind = kind
        proposeSamples.reserveCapacity(1 << 18)
        endToEndSamples.reserveCapacity(1 << 18)
        for a in agents { a.owner = self }
    }

    var outstandingCommands: Int { outstanding }

    func pump() {
        while outstanding < window, !control.stopping.load(ordering: .relaxed), let conn = idle.popLast() {
            let agent = agents[next % agents.count]
            next &+= 1
            seq &+= 1
            outstanding += 1
            let body = Array("{\"kind\":\"\(kind)\",\"args\":{\"n\":\(seq)}}".utf8)
            let request = conn.request(.post, "/api/v1/customer/sessions/\(agent.device.session)/commands", bearer: apiKey, body: body)
            let t0 = monotonicNanoseconds()
            conn.send(request, method: .post) { status, _, responseBody in
                let t1 = monotonicNanoseconds()
                self.idle.append(conn)
                if status == 201, let id = jsonString(responseBody, key: "id") {
                    LoopCounters.bump(self.counters.proposed)
                    let state = jsonString(responseBody, key: "state")
                    if state != "queued" && state != "claimed" && state != "succeeded" {
                        self.problem("proposal \(id) of the auto-approved kind answered with state \(state ?? "nil"), expected queued")
                    }
                    if self.control.recording.load(ordering: .relaxed) { self.proposeSamples.append(t1 &- t0) }
                    if let done = self.doneEarly.removeValue(forKey: id) {
                        if self.control.recording.load(ordering: .relaxed) { self.endToEndSamples.append(done &- t0) }
                    } else {
                        self.sentAt[id] = t0
                    }
                } else {
                    self.outstanding -= 1
                    self.problem("POST /api/v1/customer/sessions/\(agent.device.session)/commands: \(status) \(String(decoding: responseBody.prefix(300), as: UTF8.self))")
                    if status == 0 || status >= 500 {
                        // A hub refusing everything must not turn into a busy loop.
                        self.loop.schedule(after: 10_000_000) { self.pump() }
                        return
                    }
                }
                self.pump()
            }
        }
    }

    private func problem(_ text: String) {
        LoopCounters.bump(counters.errors)
        Problems.add(text)
    }

    func available(_ agent: DeviceAgent, at: UInt64) {}

    func resultAcked(_ agent: DeviceAgent, commandID: String, state: String?, at: UInt64) {
        outstanding -= 1
        if let t0 = sentAt.removeValue(forKey: commandID) {
            if control.recording.load(ordering: .relaxed) { endToEndSamples.append(at &- t0) }
        } else {
            doneEarly[commandID] = at
        }
        pump()
    }
}

/// `throughput`: commands/s through propose → claim → result.
struct Throughput: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commands/s through propose (API key, auto-approved kind) → command.available → claim → result, over /ws/device.")
    @OptionGroup var options: RunOptions
    @Option(help: "Commands in flight at most (proposed, result not yet acknowledged), over all loops.") var window = 128
    @Option(help: "Keep-alive proposer connections, over all loops.") var proposers = 16
    @Option(help: "Kind of the proposals: must be in the org's auto_approved_kinds.") var kind = "bench.auto"
    @Option(help: "Measured seconds.") var seconds = 20.0
    @Option(help: "Seconds of load before the measured window.") var warmup = 3.0
    @Option(help: "Seconds to wait after the window for the commands in flight to finish.") var drain = 15.0

    static func perCommand(_ list: [[String: Any]], _ done: Double) -> [Any?] {
        list.map { s -> Any? in
            let calls: Double = (s["calls"] as? NSNumber)?.doubleValue ?? 0
            let perCommand: Double? = done > 0 ? calls / done : nil
            let mean: Double? = (s["mean_ms"] as? NSNumber)?.doubleValue
            let total: Double? = (s["total_ms"] as? NSNumber)?.doubleValue
            let query: String? = s["query"] as? String
            let pairs: [(String, Any?)] = [("calls_per_command", perCommand), ("mean_ms", mean), ("total_ms", total), ("query", query)]
            return pairs
        }
    }

    func validate() throws {
        guard window >= 1, proposers >= 1, seconds > 0, options.loops >= 1 else { throw ValidationError("--window, --proposers, --seconds, --loops must be positive") }
    }

    func run() throws {
        let devices = try readDevices(options.devices, limit: options.count)
        let target = try options.proposalTarget
        let address = try SocketAddress.resolve(host: target.host, port: target.port)
        let fleet = try Fleet.open(options, devices: devices)
        let control = RunControl()
        let loops = fleet.group.loops
        var lanes: [ThroughputLane] = []
        for (li, loop) in loops.enumerated() {
            let p = proposers / loops.count + (li < proposers % loops.count ? 1 : 0)
            let w = window / loops.count + (li < window % loops.count ? 1 : 0)
            let conns = (0..<max(1, p)).map { _ in KeepAliveConnection(loop: loop, address: address, hostField: "\(target.host):\(target.port)") }
            lanes.append(ThroughputLane(loop: loop, agents: fleet.agents[li], counters: fleet.counters[li], control: control, proposers: conns,
                                        window: max(1, w), apiKey: options.apiKey, kind: kind))
        }
        let hubs = PidSet(options.hubPids), stores = PidSet(options.storePids)
        for lane in lanes { lane.loop.execute { lane.pump() } }
        Log.note("warm-up \(warmup) s, window \(window), \(proposers) proposer connections, claim max \(options.claimMax)")
        Thread.sleep(forTimeInterval: warmup)

        struct Reading { var t: UInt64; var completed: Int; var proposed: Int; var claims: Int; var empty: Int; var hub: Double?; var store: Double?; var me: Double
            var pg: [String: Double]?; var redis: [String: Double]? }
        func read() -> Reading {
            Reading(t: monotonicNanoseconds(), completed: fleet.total(.completed), proposed: fleet.total(.proposed), claims: fleet.total(.claims),
                    empty: fleet.total(.emptyClaims), hub: hubs.cpu, store: stores.cpu, me: selfCPUSeconds(),
                    pg: nil, redis: nil)
        }
        // Each store reading is bracketed by the completed count just before and after it (the
        // client programs take tens of milliseconds while commands keep flowing): the midpoint
        // is the count a reading belongs to, so the per-command figures divide matching spans.
        func bracketed<T>(_ body: () -> T) -> (value: T, at: Double) {
            let c0 = fleet.total(.completed)
            let v = body()
            return (v, Double(c0 + fleet.total(.completed)) / 2)
        }
        var pgA: (value: [String: Double]?, at: Double)?, resetAt: (value: Bool, at: Double)?, redisA: (value: [String: Double]?, at: Double)?
        if let url = options.postgresUrl { pgA = bracketed { StoreStats.pgSnapshot(url) }; resetAt = bracketed { StoreStats.pgStatementsReset(url) } }
        if let url = options.redisUrl { redisA = bracketed { StoreStats.redisSnapshot(url) } }
        control.recording.store(true, ordering: .relaxed)
        let threadsA = hubs.threads, storesA = stores.processes
        let a = read()
        Thread.sleep(forTimeInterval: seconds)
        let b = read()
        let threadsB = hubs.threads, storesB = stores.processes
        control.recording.store(false, ordering: .relaxed)
        var pgB: (value: [String: Double]?, at: Double)?, statements: (value: [[String: Any]]?, at: Double)?, redisB: (value: [String: Double]?, at: Double)?
        if let url = options.redisUrl { redisB = bracketed { StoreStats.redisSnapshot(url) } }
        if let url = options.postgresUrl { pgB = bracketed { StoreStats.pgSnapshot(url) }; statements = bracketed { StoreStats.pgStatements(url) } }
        func span(_ x: Double?, _ y: Double?) -> Double { if let x, let y { return y - x }; return 0 }
        let pgSpan = span(pgA?.at, pgB?.at), statementSpan = span(resetAt?.at, statements?.at), redisSpan = span(redisA?.at, redisB?.at)
        control.stopping.store(true, ordering: .relaxed)

        // Drain: every proposed command must come back as a result.
        let drainLimit = monotonicNanoseconds() + UInt64(drain * 1e9)
        func inFlight() -> Int { lanes.reduce(0) { sum, lane in sum + onLoop(lane.loop) { lane.outstandingCommands } } }
        var left = inFlight()
        while left > 0 && monotonicNanoseconds() < drainLimit { Thread.sleep(forTimeInterval: 0.05); left = inFlight() }
        if left > 0 { Problems.add("\(left) commands proposed but without an acknowledged result \(drain) s after the window") }

        var propose: [UInt64] = [], e2e: [UInt64] = []
        for lane in lanes {
            let s = onLoop(lane.loop) { (lane.proposeSamples, lane.endToEndSamples) }
            propose += s.0
            e2e += s.1
        }
        let elapsed = Double(b.t - a.t) / 1e9
        let done = b.completed - a.completed
        let hubCPU = a.hub.flatMap { x in b.hub.map { $0 - x } }
        let storeCPU = a.store.flatMap { x in b.store.map { $0 - x } }
        var pairs: [(String, Any?)] = [
            ("mode", "throughput"), ("devices", devices.count), ("client_loops", loops.count), ("window", window), ("proposers", proposers),
            ("claim_max", options.claimMax), ("seconds", elapsed),
            ("commands", done), ("commands_per_second", Double(done) / elapsed),
            ("proposals_per_second", Double(b.proposed - a.proposed) / elapsed),
            ("claims_per_command", done > 0 ? Double(b.claims - a.claims) / Double(done) : nil),
            ("empty_claims_per_command", done > 0 ? Double(b.empty - a.empty) / Double(done) : nil),
        ]
        pairs += latencySummary("propose", propose)
        pairs += latencySummary("end_to_end", e2e)
        pairs += [
            ("hub_cpu_seconds", hubCPU), ("hub_cpu_us_per_command", hubCPU.map { done > 0 ? $0 * 1e6 / Double(done) : .infinity }),
            ("store_cpu_seconds", storeCPU), ("store_cpu_us_per_command", storeCPU.map { done > 0 ? $0 * 1e6 / Double(done) : .infinity }),
            ("client_cpu_seconds", b.me - a.me),
            ("hub_thread_utilization", threadUtilization(threadsA, threadsB, seconds: elapsed)),
            ("store_process_utilization", threadUtilization(storesA, storesB, seconds: elapsed)),
            ("postgres", StoreStats.pgPerCommand(pgA?.value, pgB?.value, per: pgSpan)),
            ("postgres_statements_per_command", statements?.value.map { Self.perCommand($0, statementSpan) }),
            ("redis_calls_per_command", StoreStats.redisPerCommand(redisA?.value, redisB?.value, per: redisSpan)),
            ("total_proposed", fleet.total(.proposed)), ("total_completed", fleet.total(.completed)),
            ("claim_retries", fleet.total(.retries)), ("unfinished_after_drain", left),
            ("errors", Problems.count), ("first_errors", Problems.list),
        ]
        print(json(pairs))
        fflush(stdout)
        Foundation.exit(Problems.count == 0 && done > 0 ? 0 : 1)
    }
}
