import ArgumentParser
import BenchSupport
import Foundation
import HubTelemetry
import HubIO
import HubWebSocket
import HubWebSocketIO
import Synchronization

/// `ws-load`: a WebSocket load client on the hub's own engine (HubIO loops, HubWebSocketIO
/// client connections), for tools/bench/ws-bench.sh. Three modes:
///
///   echo    N connections, each keeping `--window` binary messages in flight against an echo
///           server; every echo is checked (length, sequence number, payload bytes).
///   idle    opens N connections (at most `--connect-concurrency` connects pending), then
///           holds them; with `--server-pid` reports the server's RSS per connection.
///   fanout  N subscribers on the URL's path, one publisher on `--pub-path` whose messages the
///           server sends to every subscriber; the publisher keeps at most `--window`
///           messages outstanding, counted by what subscriber #0 has received.
///
/// Each mode prints one JSON object on stdout. With `--server-pid`, the server's CPU time
/// (utime + stime from /proc/PID/stat) is read at the start and the end of the measured window,
/// which gives the fair figure: messages per server CPU second. The client's own CPU time over
/// the window is reported too: near 1.0 per second per loop means the client, not the server,
/// was the bottleneck.
struct WSLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-load", abstract: "WebSocket load client on the DeviceHub engine (echo, idle, fanout).",
        subcommands: [Echo.self, Idle.self, Fanout.self])
}

// MARK: - shared options and plumbing

struct Common: ParsableArguments {
    @Option(help: "Server URL, ws://HOST:PORT[/PATH].") var url: String
    @Option(help: "Event loop threads of the client.") var loops = 1
    @Option(help: "Connects pending at once while opening connections.") var connectConcurrency = 64
    @Option(help: "PID of the server process, to read its CPU time and RSS from /proc.") var serverPid: Int32?

    func target() throws -> (host: String, port: Int, path: String) {
        guard url.hasPrefix("ws://") else { throw ValidationError("--url must start with ws:// (got \(url))") }
        let rest = url.dropFirst(5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = hostPort.lastIndex(of: ":") {
            guard let port = Int(hostPort[hostPort.index(after: colon)...]) else { throw ValidationError("bad port in \(url)") }
            return (String(hostPort[..<colon]), port, path)
        }
        return (String(hostPort), 80, path)
    }

    func options(path: String? = nil) throws -> WebSocketClient.Options {
        let t = try target()
        var o = WebSocketClient.Options(host: t.host, port: t.port)
        o.path = path ?? t.path
        var settings = WebSocketSettings()
        // The load client never gives up on a quiet server during a benchmark (idle holds can
        // be long); it still answers the server's pings (the connection does that itself).
        settings.pingInterval = 1e9
        settings.idleTimeout = 1e9
        settings.limits = WebSocketLimits(maxFrameBytes: 64 << 20, maxMessageBytes: 64 << 20)
        o.settings = settings
        return o
    }

    func startLoops() throws -> EventLoopGroup {
        let limit = raiseFileDescriptorLimit()
        Report.note("RLIMIT_NOFILE soft=\(limit.soft) hard=\(limit.hard)")
        let group = try EventLoopGroup(count: max(1, loops), registry: nil)
        group.start()
        return group
    }
}

/// Problems seen on any loop: counted, and the first few kept word for word.
enum Report {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var first: [String] = []
    nonisolated(unsafe) private static var count = 0

    static func problem(_ text: String) {
        lock.lock()
        count += 1
        if first.count < 5 { first.append(text) }
        lock.unlock()
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data("ws-load: \(text)\n".utf8))
    }

    static var problems: (count: Int, first: [String]) {
        lock.lock()
        defer { lock.unlock() }
        return (count, first)
    }
}

/// Counters of one loop, written by that loop only (a plain load + store, no locked
/// instruction on the hot path) and read by the main thread.
final class LoopStats: Sendable {
    let received = Atomic<Int>(0)
    let opened = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let closed = Atomic<Int>(0)
    let mismatches = Atomic<Int>(0)

    @inline(__always) static func bump(_ a: borrowing Atomic<Int>) {
        a.store(a.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }
}

/// Opens `total` connections on one loop, at most `concurrency` pending at a time.
final class Ramp {
    let loop: EventLoop
    let total: Int
    let concurrency: Int
    let options: WebSocketClient.Options
    let stats: LoopStats
    let makeDelegate: (Int) -> WebSocketDelegate
    let done: () -> Void
    private(set) var connections: [WebSocketConnection] = []
    private var started = 0
    private var pending = 0
    private var finished = 0

    init(loop: EventLoop, total: Int, concurrency: Int, options: WebSocketClient.Options, stats: LoopStats,
         makeDelegate: @escaping (Int) -> WebSocketDelegate, done: @escaping () -> Void) {
        self.loop = loop
        self.total = total
        self.concurrency = max(1, concurrency)
        self.options = options
        self.stats = stats
        self.makeDelegate = makeDelegate
        self.done = done
        connections.reserveCapacity(total)
    }

    /// Loop thread only.
    func start() {
        if total == 0 { done(); return }
        pump()
    }

    private func pump() {
        while pending < concurrency && started < total {
            let i = started
            started += 1
            pending += 1
            WebSocketClient.connect(options, on: loop, makeDelegate: { _ in self.makeDelegate(i) }) { result in
                self.pending -= 1
                self.finished += 1
                switch result {
                case .success(let ws):
                    self.connections.append(ws)
                    LoopStats.bump(self.stats.opened)
                case .failure(let error):
                    LoopStats.bump(self.stats.failed)
                    Report.problem("connect #\(i) on loop \(self.loop.index): \(error)")
                }
                if self.finished == self.total {
                    self.done()
                } else {
                    // Not re-entrant: a connect can fail synchronously inside `pump`.
                    self.loop.execute { self.pump() }
                }
            }
        }
    }
}


/// Opens connections on every loop (split evenly, connection `k` on loop `k % loops`) and
/// waits until each has succeeded or failed. Returns the ramps (one per loop).
func openAll(group: EventLoopGroup, count: Int, concurrency: Int, options: WebSocketClient.Options, stats: [LoopStats],
             timeout: Double, makeDelegate: @escaping (_ loop: Int, _ globalIndex: Int) -> WebSocketDelegate) throws -> [Ramp] {
    let loops = group.loops
    let ready = DispatchSemaphore(value: 0)
    var ramps: [Ramp] = []
    for (li, loop) in loops.enumerated() {
        let n = count / loops.count + (li < count % loops.count ? 1 : 0)
        let c = max(1, concurrency / loops.count)
        let ramp = Ramp(loop: loop, total: n, concurrency: c, options: options, stats: stats[li],
                        makeDelegate: { local in makeDelegate(li, local * loops.count + li) }, done: { ready.signal() })
        ramps.append(ramp)
    }
    let started = monotonicNanoseconds()
    for ramp in ramps { ramp.loop.execute { ramp.start() } }
    for _ in ramps {
        if ready.wait(timeout: .now() + timeout) == .timedOut {
            let opened = stats.reduce(0) { $0 + $1.opened.load(ordering: .relaxed) }
            throw ValidationError("only \(opened) of \(count) connections finished opening within \(timeout) s (hang?)")
        }
    }
    let elapsed = Double(monotonicNanoseconds() - started) / 1e9
    let opened = stats.reduce(0) { $0 + $1.opened.load(ordering: .relaxed) }
    Report.note("\(opened) of \(count) connections open after \(String(format: "%.2f", elapsed)) s")
    return ramps
}

// MARK: - /proc readings

/// A `kB` line of /proc/PID/status (VmRSS, VmHWM...), in KiB.
func processStatusKiB(_ pid: String, _ key: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
    }
    return nil
}


/// One measured window: counters, wall time, server and client CPU at its start and end.
struct Window {
    var start: UInt64 = 0
    var received = 0
    var serverCPU: (user: Double, system: Double)?
    var clientCPU = 0.0

    /// Server CPU between `a` and `b`: (user + system, user, system) seconds.
    static func serverCPU(_ a: Window, _ b: Window) -> (total: Double, user: Double, system: Double)? {
        guard let x = a.serverCPU, let y = b.serverCPU else { return nil }
        let u = y.user - x.user, s = y.system - x.system
        return (u + s, u, s)
    }

    static func take(_ stats: [LoopStats], serverPid: Int32?) -> Window {
        Window(start: monotonicNanoseconds(), received: stats.reduce(0) { $0 + $1.received.load(ordering: .relaxed) },
               serverCPU: serverPid.flatMap(processCPUTimes), clientCPU: selfCPUSeconds())
    }
}

func finish(_ pairs: [(String, Any?)], ok: Bool) -> Never {
    let problems = Report.problems
    var all = pairs
    all.append(("problems", problems.count))
    all.append(("first_problems", problems.first))
    print(json(all))
    fflush(stdout)
    exit(ok && problems.count == 0 ? 0 : 1)
}

/// Message template: bytes 0..<8 carry the sequence number (little endian), the rest a
/// pattern that depends on the connection, so that crossed or corrupted echoes are caught.
func makeTemplate(size: Int, seed: Int) -> UnsafeMutableRawBufferPointer {
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
    for j in 0..<size { buf[j] = UInt8(truncatingIfNeeded: j &* 31 &+ seed &* 7 &+ 1) }
    return buf
}

// MARK: - echo

final class EchoClient: WebSocketDelegate {
    let index: Int
    let stats: LoopStats
    let window: Int
    let message: UnsafeMutableRawBufferPointer
    private var nextSend: UInt64 = 0
    private var nextExpected: UInt64 = 0

    init(index: Int, size: Int, window: Int, stats: LoopStats) {
        self.index = index
        self.stats = stats
        self.window = window
        message = makeTemplate(size: size, seed: index)
    }

    private func sendOne(_ ws: WebSocketConnection) {
        message.storeBytes(of: nextSend.littleEndian, toByteOffset: 0, as: UInt64.self)
        nextSend &+= 1
        ws.send(.binary, payload: UnsafeRawBufferPointer(message))
    }

    /// Called on the connection's loop once every connection is open, so that traffic on
    /// the first connections does not slow the handshakes of the last ones.
    func start(_ ws: WebSocketConnection) {
        for _ in 0..<window { sendOne(ws) }
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        let n = message.count
        guard binary.count == n else {
            return mismatch(ws, "connection \(index): echo of message \(nextExpected) has \(binary.count) bytes, sent \(n)")
        }
        let seq = UInt64(littleEndian: binary.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard seq == nextExpected else {
            return mismatch(ws, "connection \(index): expected echo of message \(nextExpected), got sequence number \(seq)")
        }
        guard memcmp(binary.baseAddress! + 8, message.baseAddress! + 8, n - 8) == 0 else {
            return mismatch(ws, "connection \(index): payload of echo \(seq) differs from what was sent")
        }
        nextExpected &+= 1
        LoopStats.bump(stats.received)
        sendOne(ws)
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        mismatch(ws, "connection \(index): got a text message (\(text.count) bytes), sent binary")
    }

    private func mismatch(_ ws: WebSocketConnection, _ what: String) {
        LoopStats.bump(stats.mismatches)
        Report.problem(what)
        ws.close(.normal)   // stop the flow on this connection; the run reports the failure
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        LoopStats.bump(stats.closed)
        Report.problem("connection \(index) closed during the run: code \(code.map { "\($0)" } ?? "none"), \(reason)")
    }
}

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Echo throughput: each connection keeps --window messages in flight.")
    @OptionGroup var common: Common
    @Option(help: "Connections.") var connections = 100
    @Option(help: "Message size in bytes (at least 8: a sequence number leads each message).") var size = 16
    @Option(help: "Measured seconds.") var seconds = 10.0
    @Option(help: "Seconds of traffic before the measured window.") var warmup = 1.0
    @Option(help: "Messages in flight per connection.") var window = 1

    func validate() throws {
        guard size >= 8 else { throw ValidationError("--size must be at least 8") }
        guard window >= 1, connections >= 1 else { throw ValidationError("--window and --connections must be at least 1") }
    }

    func run() throws {
        let group = try common.startLoops()
        let stats = group.loops.map { _ in LoopStats() }
        let options = try common.options()
        let size = self.size, window = self.window
        let ramps = try openAll(group: group, count: connections, concurrency: common.connectConcurrency, options: options, stats: stats,
                                timeout: 30 + Double(connections) / 500) { li, gi in
            EchoClient(index: gi, size: size, window: window, stats: stats[li])
        }
        for ramp in ramps {
            ramp.loop.execute {
                for ws in ramp.connections where ws.isOpen { (ws.delegate as? EchoClient)?.start(ws) }
            }
        }
        Thread.sleep(forTimeInterval: warmup)
        let a = Window.take(stats, serverPid: common.serverPid)
        Thread.sleep(forTimeInterval: seconds)
        let b = Window.take(stats, serverPid: common.serverPid)
        let elapsed = Double(b.start - a.start) / 1e9
        let messages = b.received - a.received
        let cpu = Window.serverCPU(a, b)
        let serverCPU = cpu?.total
        let opened = stats.reduce(0) { $0 + $1.opened.load(ordering: .relaxed) }
        finish([
            ("mode", "echo"), ("connections", connections), ("open", opened), ("size", size), ("window", window),
            ("messages", messages), ("seconds", elapsed), ("messages_per_second", Double(messages) / elapsed),
            ("server_cpu_seconds", serverCPU), ("server_user_seconds", cpu?.user), ("server_system_seconds", cpu?.system),
            ("messages_per_server_cpu_second", serverCPU.map { $0 > 0 ? Double(messages) / $0 : .infinity }),
            ("client_cpu_seconds", b.clientCPU - a.clientCPU),
            ("mismatches", stats.reduce(0) { $0 + $1.mismatches.load(ordering: .relaxed) }),
        ], ok: messages > 0 && opened == connections)
    }
}

// MARK: - idle

final class IdleClient: WebSocketDelegate {
    let index: Int
    let stats: LoopStats
    init(index: Int, stats: LoopStats) { self.index = index; self.stats = stats }
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        Report.problem("idle connection \(index) received a text message (\(text.count) bytes)")
    }
    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        Report.problem("idle connection \(index) received a binary message (\(binary.count) bytes)")
    }
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        LoopStats.bump(stats.closed)
        Report.problem("idle connection \(index) closed: code \(code.map { "\($0)" } ?? "none"), \(reason)")
    }
}

struct Idle: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Idle connections: open many, hold them, report the server's RSS per connection.")
    @OptionGroup var common: Common
    @Option(help: "Connections to open.") var connections = 10_000
    @Option(help: "Seconds to wait after the last connection opened before reading the server's RSS.") var settle = 2.0
    @Option(help: "Seconds to hold the connections in all (from when all are open).") var hold = 5.0

    func run() throws {
        let group = try common.startLoops()
        let stats = group.loops.map { _ in LoopStats() }
        let options = try common.options()
        let pid = common.serverPid.map { String($0) }
        let serverBefore = pid.flatMap { processStatusKiB($0, "VmRSS") }
        let clientBefore = processStatusKiB("self", "VmRSS")
        _ = try openAll(group: group, count: connections, concurrency: common.connectConcurrency, options: options, stats: stats,
                        timeout: 60 + Double(connections) / 200) { li, gi in
            IdleClient(index: gi, stats: stats[li])
        }
        let opened = stats.reduce(0) { $0 + $1.opened.load(ordering: .relaxed) }
        Report.note("all \(opened) open; holding")
        Thread.sleep(forTimeInterval: min(settle, hold))
        let serverAfter = pid.flatMap { processStatusKiB($0, "VmRSS") }
        let clientAfter = processStatusKiB("self", "VmRSS")
        Thread.sleep(forTimeInterval: max(0, hold - settle))
        let serverEnd = pid.flatMap { processStatusKiB($0, "VmRSS") }
        let closed = stats.reduce(0) { $0 + $1.closed.load(ordering: .relaxed) }
        func perConnection(_ before: Int?, _ after: Int?) -> Double? {
            guard let before, let after, opened > 0 else { return nil }
            return Double(after - before) * 1024 / Double(opened)
        }
        finish([
            ("mode", "idle"), ("connections", connections), ("open", opened),
            ("failed", stats.reduce(0) { $0 + $1.failed.load(ordering: .relaxed) }), ("closed_during_hold", closed),
            ("server_rss_before_kib", serverBefore), ("server_rss_after_kib", serverAfter), ("server_rss_end_kib", serverEnd),
            ("server_bytes_per_connection", perConnection(serverBefore, serverAfter)),
            ("client_rss_before_kib", clientBefore), ("client_rss_after_kib", clientAfter),
            ("client_bytes_per_connection", perConnection(clientBefore, clientAfter)),
        ], ok: opened == connections && closed == 0)
    }
}

// MARK: - fanout

/// The publisher's flow control, on loop 0 (where subscriber #0 and the publisher live).
final class FanoutControl {
    let window: Int
    let message: UnsafeMutableRawBufferPointer
    var publisher: WebSocketConnection?
    var sent: UInt64 = 0
    var receivedBySubscriber0: UInt64 = 0

    init(window: Int, size: Int) {
        self.window = window
        message = makeTemplate(size: size, seed: 0)
    }

    /// Sends until `window` messages are outstanding (sent, not yet seen by subscriber #0).
    func topUp() {
        guard let p = publisher else { return }
        while sent &- receivedBySubscriber0 < UInt64(window) {
            message.storeBytes(of: sent.littleEndian, toByteOffset: 0, as: UInt64.self)
            sent &+= 1
            if p.send(.binary, payload: UnsafeRawBufferPointer(message)) == .dropped {
                Report.problem("publisher connection dropped by its own send")
                publisher = nil
                return
            }
        }
    }
}

final class Subscriber: WebSocketDelegate {
    let index: Int
    let stats: LoopStats
    let size: Int
    /// Set on subscriber #0 only.
    let control: FanoutControl?
    private var nextExpected: UInt64 = 0

    init(index: Int, size: Int, stats: LoopStats, control: FanoutControl?) {
        self.index = index
        self.size = size
        self.stats = stats
        self.control = control
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        if binary.count != size {
            LoopStats.bump(stats.mismatches)
            Report.problem("subscriber \(index): message \(nextExpected) has \(binary.count) bytes, published \(size)")
        } else {
            let seq = UInt64(littleEndian: binary.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            if seq != nextExpected {
                LoopStats.bump(stats.mismatches)
                Report.problem("subscriber \(index): expected message \(nextExpected), got \(seq) (lost, duplicated or reordered)")
            }
            nextExpected = seq &+ 1
        }
        LoopStats.bump(stats.received)
        if let control {
            control.receivedBySubscriber0 &+= 1
            control.topUp()
        }
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        LoopStats.bump(stats.mismatches)
        Report.problem("subscriber \(index): got a text message, published binary")
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        LoopStats.bump(stats.closed)
        Report.problem("subscriber \(index) closed during the run: code \(code.map { "\($0)" } ?? "none"), \(reason)")
    }
}

final class PublisherClient: WebSocketDelegate {
    let control: FanoutControl
    init(control: FanoutControl) { self.control = control }
    func webSocketOpened(_ ws: WebSocketConnection) {
        control.publisher = ws
        control.topUp()
    }
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {}
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        control.publisher = nil
        Report.problem("publisher closed during the run: code \(code.map { "\($0)" } ?? "none"), \(reason)")
    }
}

struct Fanout: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fan-out: one publisher, many subscribers; deliveries per second.")
    @OptionGroup var common: Common
    @Option(help: "Subscriber connections (on the URL's path).") var subscribers = 1000
    @Option(help: "Path of the publisher connection.") var pubPath = "/pub"
    @Option(help: "Message size in bytes (at least 8).") var size = 16
    @Option(help: "Measured seconds.") var seconds = 10.0
    @Option(help: "Seconds of traffic before the measured window.") var warmup = 1.0
    @Option(help: "Messages published and not yet received by subscriber #0, at most.") var window = 1024
    @Option(help: "Longest extra warm-up, waiting for subscriber #0 to have received 2 × --window messages.") var maxWarmup = 30.0
    @Option(help: "Seconds between the last subscriber opening and the first message (the server may register subscribers after its 101).") var settle = 0.5

    func validate() throws {
        guard size >= 8 else { throw ValidationError("--size must be at least 8") }
        guard window >= 1, subscribers >= 1 else { throw ValidationError("--window and --subscribers must be at least 1") }
    }

    func run() throws {
        let group = try common.startLoops()
        let stats = group.loops.map { _ in LoopStats() }
        let control = FanoutControl(window: window, size: size)
        let size = self.size
        _ = try openAll(group: group, count: subscribers, concurrency: common.connectConcurrency, options: try common.options(), stats: stats,
                        timeout: 30 + Double(subscribers) / 500) { li, gi in
            // Subscriber #0 is connection 0 of loop 0, the publisher's loop.
            Subscriber(index: gi, size: size, stats: stats[li], control: gi == 0 ? control : nil)
        }
        Thread.sleep(forTimeInterval: settle)
        let pubOptions = try common.options(path: pubPath)
        let opened = DispatchSemaphore(value: 0)
        let loop0 = group.loops[0]
        loop0.execute {
            WebSocketClient.connect(pubOptions, on: loop0, makeDelegate: { _ in PublisherClient(control: control) }) { result in
                if case .failure(let error) = result { Report.problem("publisher connect: \(error)") }
                opened.signal()
            }
        }
        if opened.wait(timeout: .now() + 30) == .timedOut {
            throw ValidationError("publisher did not connect within 30 s")
        }
        // Warm-up: at least --warmup seconds, and until subscriber #0 has seen two windows'
        // worth of messages, so the measured window is the steady state and not the first
        // burst (a server that takes a whole window in one read queues window × subscribers
        // frames before its first write).
        Thread.sleep(forTimeInterval: warmup)
        let warmupLimit = monotonicNanoseconds() + UInt64(maxWarmup * 1e9)
        while onLoop(loop0, { control.receivedBySubscriber0 }) < UInt64(2 * window) {
            if monotonicNanoseconds() > warmupLimit {
                Report.problem("subscriber #0 had not received \(2 * window) messages after \(warmup + maxWarmup) s of warm-up")
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let a = Window.take(stats, serverPid: common.serverPid)
        let pa = onLoop(loop0) { control.receivedBySubscriber0 }
        Thread.sleep(forTimeInterval: seconds)
        let b = Window.take(stats, serverPid: common.serverPid)
        let pb = onLoop(loop0) { control.receivedBySubscriber0 }
        let elapsed = Double(b.start - a.start) / 1e9
        let deliveries = b.received - a.received
        let cpu = Window.serverCPU(a, b)
        let serverCPU = cpu?.total
        let open = stats.reduce(0) { $0 + $1.opened.load(ordering: .relaxed) }
        finish([
            ("mode", "fanout"), ("subscribers", subscribers), ("open", open), ("size", size), ("window", window),
            ("subscriber0_messages", Int(pb - pa)), ("deliveries", deliveries), ("seconds", elapsed),
            ("deliveries_per_second", Double(deliveries) / elapsed),
            ("server_cpu_seconds", serverCPU), ("server_user_seconds", cpu?.user), ("server_system_seconds", cpu?.system),
            ("deliveries_per_server_cpu_second", serverCPU.map { $0 > 0 ? Double(deliveries) / $0 : .infinity }),
            ("client_cpu_seconds", b.clientCPU - a.clientCPU),
            ("mismatches", stats.reduce(0) { $0 + $1.mismatches.load(ordering: .relaxed) }),
        ], ok: deliveries > 0 && open == subscribers)
    }
}

WSLoad.main()
