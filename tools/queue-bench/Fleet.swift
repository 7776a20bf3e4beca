import ArgumentParser
import BenchSupport
import Foundation
import HubHTTPClient
import HubIO
import HubWebSocket
import HubWebSocketIO

/// Options every measuring subcommand shares.
struct RunOptions: ParsableArguments {
    @Option(help: "Hub that takes proposals and approvals (node A), http://HOST:PORT.") var url = "http://127.0.0.1:8080"
    @Option(help: "Hub the devices authenticate with and connect to (node B); default: --url.") var deviceUrl: String?
    @Option(help: "Devices file written by setup.") var devices: String
    @Option(help: "Use the first N devices of the file (default: all).") var count: Int?
    @Option(help: "API key with scope commands:propose (setup prints it).") var apiKey: String
    @Option(help: "Event loop threads of the client.") var loops = 1
    @Option(help: "WebSocket connects pending at once while opening the device sockets.") var connectConcurrency = 64
    @Option(help: "Device auth requests in flight at once.") var authConcurrency = 32
    @Option(help: "max of each claim message.") var claimMax = 10
    @Option(help: "Comma-separated hub PIDs: their CPU over the measured window.") var hubPids: String?
    @Option(help: "Comma-separated store PIDs (redis-server, postgres processes): their CPU over the window.") var storePids: String?
    @Option(help: "postgres:// URL: read pg_stat_database / pg_stat_wal / pg_stat_statements around the window (psql).") var postgresUrl: String?
    @Option(help: "redis:// URL: read INFO commandstats around the window (redis-cli).") var redisUrl: String?

    var proposalTarget: (host: String, port: Int, base: String) { get throws { try parseBase(url, option: "--url") } }
    var deviceTarget: (host: String, port: Int, base: String) { get throws { try parseBase(deviceUrl ?? url, option: "--device-url") } }
}

/// The device sockets of a run, spread over the client's loops (device i on loop i % loops).
final class Fleet {
    let group: EventLoopGroup
    let agents: [[DeviceAgent]]
    let counters: [LoopCounters]
    var all: [DeviceAgent] { agents.flatMap { $0 } }

    private init(group: EventLoopGroup, agents: [[DeviceAgent]], counters: [LoopCounters]) {
        self.group = group
        self.agents = agents
        self.counters = counters
    }

    func total(_ c: LoopCounters.Counter) -> Int {
        counters.reduce(0) { $0 + $1.load(c) }
    }

    /// Device tokens (POST /api/v1/device/auth on the device node), then one /ws/device socket
    /// per device with `Authorization: Bearer <token>`; returns when every socket is open and
    /// its first heartbeat acknowledged.
    static func open(_ options: RunOptions, devices: [BenchDevice]) throws -> Fleet {
        let target = try options.deviceTarget
        let started = monotonicNanoseconds()
        let base = target.base
        let tokens: [String] = try blocking {
            let client = try HTTPClient()
            defer { client.shutdown() }
            return try await concurrently(devices.count, concurrency: options.authConcurrency) { i in
                let grant = try await call(client, .post, "\(base)/api/v1/device/auth",
                                           json: ["device_id": devices[i].id, "device_secret": devices[i].secret], expect: 200)
                guard let token = grant["token"] as? String else { throw Failure("device auth without token") }
                return token
            }
        }
        Log.note(String(format: "%d device tokens in %.1f s", tokens.count, Double(monotonicNanoseconds() - started) / 1e9))

        _ = raiseFileDescriptorLimit()
        let group = try EventLoopGroup(count: max(1, options.loops), registry: nil)
        group.start()
        let counters = group.loops.map { _ in LoopCounters() }
        var agents: [[DeviceAgent]] = group.loops.map { _ in [] }
        for (i, d) in devices.enumerated() {
            let li = i % group.loops.count
            agents[li].append(DeviceAgent(index: i, device: d, counters: counters[li], claimMax: options.claimMax))
        }
        var ws = WebSocketClient.Options(host: target.host, port: target.port)
        ws.path = "/ws/device"
        var settings = WebSocketSettings()
        settings.pingInterval = 1e9     // the hub pings idle sockets; the connection answers by itself
        settings.idleTimeout = 1e9
        ws.settings = settings
        let fleet = Fleet(group: group, agents: agents, counters: counters)
        let t1 = monotonicNanoseconds()
        for (li, loop) in group.loops.enumerated() {
            let ramp = Ramp(loop: loop, agents: agents[li], tokens: agents[li].map { tokens[$0.index] }, options: ws,
                            concurrency: max(1, options.connectConcurrency / group.loops.count), counters: counters[li])
            loop.execute { ramp.pump() }
        }
        let deadline = monotonicNanoseconds() + UInt64((30 + Double(devices.count) / 50) * 1e9)
        while fleet.total(.ready) < devices.count {
            if monotonicNanoseconds() > deadline || fleet.total(.errors) > 0 {
                throw Failure("only \(fleet.total(.opened)) sockets open and \(fleet.total(.ready)) heartbeats acknowledged of \(devices.count); problems: \(Problems.list)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        Log.note(String(format: "%d device sockets open on %@:%d (heartbeat acknowledged) in %.1f s", devices.count, target.host, target.port,
                        Double(monotonicNanoseconds() - t1) / 1e9))
        return fleet
    }
}

/// Opens the sockets of one loop, at most `concurrency` connects pending.
final class Ramp {
    let loop: EventLoop
    let agents: [DeviceAgent]
    let tokens: [String]
    let options: WebSocketClient.Options
    let concurrency: Int
    let counters: LoopCounters
    private var next = 0
    private var pending = 0

    init(loop: EventLoop, agents: [DeviceAgent], tokens: [String], options: WebSocketClient.Options, concurrency: Int, counters: LoopCounters) {
        self.loop = loop
        self.agents = agents
        self.tokens = tokens
        self.options = options
        self.concurrency = concurrency
        self.counters = counters
    }

    func pump() {
        while pending < concurrency && next < agents.count {
            let agent = agents[next]
            var o = options
            o.headers = [("Authorization", "Bearer " + tokens[next])]
            next += 1
            pending += 1
            WebSocketClient.connect(o, on: loop, makeDelegate: { _ in agent }) { result in
                self.pending -= 1
                switch result {
                case .success: LoopCounters.bump(self.counters.opened)
                case .failure(let error):
                    LoopCounters.bump(self.counters.errors)
                    Problems.add("device \(agent.index): /ws/device connect: \(error)")
                }
                self.loop.execute { self.pump() }
            }
        }
    }
}

