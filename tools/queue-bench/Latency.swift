import BenchSupport
import ArgumentParser
import Foundation
import HubHTTP
import HubIO

/// One sample at a time, on loop 0 (every socket of the run lives there, so all timestamps are
/// taken on one thread):
///   1. the API key proposes a command of a kind that needs its own approval into the device's
///      approved session → 201, state `pending_approval` (nothing is announced yet);
///   2. t0, then `POST /api/v1/customer/commands/:id/approve` (approver JWT) is written;
///   3. the device's socket receives `command.available` → t1; latency = t1 − t0;
///   4. the device claims and answers the result; the sample ends when the result is
///      acknowledged and the approve response has arrived.
/// Devices take turns, so consecutive samples hit different devices and sessions.
final class LatencyDriver: AgentOwner {
    let loop: EventLoop
    let agents: [DeviceAgent]
    let proposer: KeepAliveConnection
    let approver: KeepAliveConnection
    let apiKey: String
    let approverJWT: String
    let kind: String
    let warmup: Int
    let total: Int
    let gapNanoseconds: UInt64
    let timeoutNanoseconds: UInt64
    let finished: DispatchSemaphore
    private var k = 0
    private var armed: DeviceAgent?
    private var commandID = ""
    private var t0: UInt64 = 0
    private var tAvailable: UInt64?
    private var tResponse: UInt64?
    private var resultDone = false
    private var watchdog: TimerHandle?
    var availableSamples: [UInt64] = []
    var responseSamples: [UInt64] = []
    var resultSamples: [UInt64] = []
    var proposeSamples: [UInt64] = []
    /// Samples where command.available arrived before the approve response.
    var availableFirst = 0
    var strayAvailable = 0
    var timeouts = 0

    init(loop: EventLoop, agents: [DeviceAgent], proposer: KeepAliveConnection, approver: KeepAliveConnection, apiKey: String,
         approverJWT: String, kind: String, warmup: Int, samples: Int, gapMilliseconds: Double, timeout: Double, finished: DispatchSemaphore) {
        self.loop = loop
        self.agents = agents
        self.proposer = proposer
        self.approver = approver
        self.apiKey = apiKey
        self.approverJWT = approverJWT
        self.kind = kind
        self.warmup = warmup
        self.total = warmup + samples
        self.gapNanoseconds = UInt64(gapMilliseconds * 1e6)
        self.timeoutNanoseconds = UInt64(timeout * 1e9)
        self.finished = finished
        for a in agents { a.owner = self }
    }

    private func problem(_ text: String) {
        Problems.add(text)
    }

    func start() { nextSample() }

    private func nextSample() {
        guard k < total else { finished.signal(); return }
        let sample = k
        let agent = agents[k % agents.count]
        let body = Array("{\"kind\":\"\(kind)\",\"args\":{\"n\":\(k)}}".utf8)
        let request = proposer.request(.post, "/api/v1/customer/sessions/\(agent.device.session)/commands", bearer: apiKey, body: body)
        watchdog = loop.schedule(after: timeoutNanoseconds) { [weak self] in
            guard let self, self.k == sample else { return }
            self.timeouts += 1
            self.problem("sample \(sample) (device \(agent.index), command \(self.commandID)): not finished after \(Double(self.timeoutNanoseconds) / 1e9) s: available \(self.tAvailable != nil), approve response \(self.tResponse != nil), result \(self.resultDone)")
            self.advance()
        }
        let tp = monotonicNanoseconds()
        proposer.send(request, method: .post) { status, _, responseBody in
            guard self.k == sample else { return }
            guard status == 201, let id = jsonString(responseBody, key: "id") else {
                self.problem("propose (sample \(sample)): \(status) \(String(decoding: responseBody.prefix(300), as: UTF8.self))")
                return self.advance()
            }
            let state = jsonString(responseBody, key: "state")
            guard state == "pending_approval" else {
                self.problem("proposal \(id) of kind \(self.kind) is \(state ?? "nil"), expected pending_approval (is the kind auto-approved?)")
                return self.advance()
            }
            if sample >= self.warmup { self.proposeSamples.append(monotonicNanoseconds() &- tp) }
            self.armed = agent
            self.commandID = id
            self.tAvailable = nil
            self.tResponse = nil
            self.resultDone = false
            let approve = self.approver.request(.post, "/api/v1/customer/commands/\(id)/approve", bearer: self.approverJWT,
                                                body: Array("{\"note\":\"bench\"}".utf8))
            self.t0 = monotonicNanoseconds()
            self.approver.send(approve, method: .post) { status, _, body in
                guard self.k == sample else { return }
                self.tResponse = monotonicNanoseconds()
                if status != 200 {
                    self.problem("approve \(id): \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
                    return self.advance()
                }
                let state = jsonString(body, key: "state")
                if state != "queued" && state != "claimed" && state != "succeeded" {
                    self.problem("approve \(id): answered state \(state ?? "nil"), expected queued (or later)")
                }
                self.maybeFinish()
            }
        }
    }

    func available(_ agent: DeviceAgent, at: UInt64) {
        guard agent === armed, tAvailable == nil else { strayAvailable += 1; return }
        tAvailable = at
        if tResponse == nil { availableFirst += k >= warmup ? 1 : 0 }
    }

    func resultAcked(_ agent: DeviceAgent, commandID: String, state: String?, at: UInt64) {
        guard agent === armed, commandID == self.commandID else {
            return problem("result of an unexpected command \(commandID) on device \(agent.index)")
        }
        resultDone = true
        if k >= warmup { resultSamples.append(at &- t0) }
        maybeFinish()
    }

    private func maybeFinish() {
        guard let ta = tAvailable, let tr = tResponse, resultDone else { return }
        if k >= warmup {
            availableSamples.append(ta &- t0)
            responseSamples.append(tr &- t0)
        }
        advance()
    }

    private func advance() {
        watchdog?.cancel()
        watchdog = nil
        armed = nil
        k += 1
        if gapNanoseconds > 0 {
            loop.schedule(after: gapNanoseconds) { self.nextSample() }
        } else {
            loop.execute { self.nextSample() }
        }
    }
}

/// `latency`: approval → command.available on the device's socket.
struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Latency from sending POST /api/v1/customer/commands/:id/approve until the device's socket receives command.available.")
    @OptionGroup var options: RunOptions
    @Option(help: "Access token of a member with role approver (not the proposer: four eyes).") var approverJwt: String
    @Option(help: "Kind of the proposals: must NOT be auto-approved.") var kind = "bench.approve"
    @Option(help: "Measured samples.") var samples = 2000
    @Option(help: "Samples before the measured ones (not reported).") var warmupSamples = 100
    @Option(help: "Milliseconds between one sample's end and the next proposal.") var gapMs = 1.0
    @Option(help: "Seconds one sample may take before it counts as an error.") var timeout = 10.0
    @Option(help: "A label for the JSON (one-node, two-node).") var label = "one-node"

    func run() throws {
        var opts = options
        if opts.loops != 1 { Log.note("latency runs every socket on one client loop (--loops ignored)") }
        opts.loops = 1
        let devices = try readDevices(opts.devices, limit: opts.count)
        let target = try opts.proposalTarget
        let address = try SocketAddress.resolve(host: target.host, port: target.port)
        let fleet = try Fleet.open(opts, devices: devices)
        let loop = fleet.group.loops[0]
        let host = "\(target.host):\(target.port)"
        let finished = DispatchSemaphore(value: 0)
        let driver = LatencyDriver(loop: loop, agents: fleet.agents[0], proposer: KeepAliveConnection(loop: loop, address: address, hostField: host),
                                   approver: KeepAliveConnection(loop: loop, address: address, hostField: host), apiKey: opts.apiKey,
                                   approverJWT: approverJwt, kind: kind, warmup: warmupSamples, samples: samples, gapMilliseconds: gapMs,
                                   timeout: timeout, finished: finished)
        let hubs = PidSet(opts.hubPids), stores = PidSet(opts.storePids)
        // With --postgres-url: the statements of the whole run (warm-up included), per sample
        // (one sample = propose, approve, claim, result).
        if let url = opts.postgresUrl { _ = StoreStats.pgStatementsReset(url) }
        let h0 = hubs.cpu, s0 = stores.cpu, c0 = selfCPUSeconds(), t0 = monotonicNanoseconds()
        loop.execute { driver.start() }
        finished.wait()
        let statements = opts.postgresUrl.flatMap { StoreStats.pgStatements($0, limit: 40) }
        let elapsed = Double(monotonicNanoseconds() - t0) / 1e9
        let h1 = hubs.cpu, s1 = stores.cpu, c1 = selfCPUSeconds()
        let r = onLoop(loop) { (driver.availableSamples, driver.responseSamples, driver.resultSamples, driver.proposeSamples,
                                driver.availableFirst, driver.strayAvailable, driver.timeouts) }
        var pairs: [(String, Any?)] = [
            ("mode", "latency"), ("label", label), ("devices", devices.count),
            ("proposal_node", target.base), ("device_node", try opts.deviceTarget.base),
            ("warmup_samples", warmupSamples), ("gap_ms", gapMs), ("seconds", elapsed),
        ]
        pairs += latencySummary("available", r.0)
        pairs += latencySummary("approve_response", r.1)
        pairs += latencySummary("result_ack", r.2)
        pairs += latencySummary("propose", r.3)
        pairs += [
            ("available_before_approve_response", r.4), ("stray_available", r.5), ("timeouts", r.6),
            ("hub_cpu_seconds", h0.flatMap { a in h1.map { $0 - a } }), ("store_cpu_seconds", s0.flatMap { a in s1.map { $0 - a } }),
            ("client_cpu_seconds", c1 - c0),
            ("postgres_statements_per_sample", statements.map { Throughput.perCommand($0, Double(warmupSamples + samples)) }),
            ("errors", Problems.count), ("first_errors", Problems.list),
        ]
        print(json(pairs))
        fflush(stdout)
        Foundation.exit(Problems.count == 0 && !r.0.isEmpty ? 0 : 1)
    }
}
