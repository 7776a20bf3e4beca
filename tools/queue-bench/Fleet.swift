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
        let tokens = try deviceTokens(base: target.base, devices: devices, concurrency: options.authConcurrency)
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
        let ws = benchSocketOptions(host: target.host, port: target.port, path: "/ws/device")
        let fleet = Fleet(group: group, agents: agents, counters: counters)
        let t1 = monotonicNanoseconds()
        for (li, loop) in group.loops.enumerated() {
            let c = counters[li], list = agents[li]
            let sockets = list.map { agent -> SocketRamp.Socket in
                var o = ws
                o.headers = [("Authorization", "Bearer " + tokens[agent.index])]
                return SocketRamp.Socket(options: o, delegate: agent)
            }
            let ramp = SocketRamp(loop: loop, sockets: sockets, concurrency: max(1, options.connectConcurrency / group.loops.count)) { k, result in
                switch result {
                case .success: LoopCounters.bump(c.opened)
                case .failure(let error):
                    LoopCounters.bump(c.errors)
                    Problems.add("device \(list[k].index): /ws/device connect: \(error)")
                }
            }
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
