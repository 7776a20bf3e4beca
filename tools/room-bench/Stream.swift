import ArgumentParser
import BenchSupport
import Foundation
import HubHTTPClient
import HubIO
import HubWebSocketIO

/// `stream`: D devices, each streaming events into its own session room, S portals per room.
///
/// Placement: device i connects to `--device-urls[i % n]`; its room's portals to
/// `--subscriber-urls[(i + --subscriber-shift) % m]` (two nodes A,B for both lists and shift 1:
/// every device's portals on the other node). Client side, device i lives on loop i % L with
/// its room's first portal (the pacer); the room's other portals spread over all loops.
///
/// Phases: one command per device is proposed (API key, the org's auto-approved kind, a lease
/// of an hour) → portals open and subscribe (all acknowledged) → devices open, heartbeat,
/// claim (all hold their command) → streaming: as fast as the windows allow, or `--rate`
/// events/s over all devices → `--warmup` s → the measured `--seconds` (deliveries, accepted
/// events, hub CPU, pacer latency) → stop → every accepted event must reach every portal of
/// its room within `--drain` s → results, sockets closed.
struct Stream: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Devices stream events (progress or log) into their session rooms; portals on /ws/customer count deliveries and latency.")
    @Option(help: "Hub nodes the devices connect to (comma-separated http://HOST:PORT); device i uses entry i % count.") var deviceUrls = "http://127.0.0.1:8080"
    @Option(help: "Hub nodes the portals connect to (default: --device-urls); room i's portals use entry (i + --subscriber-shift) % count.") var subscriberUrls: String?
    @Option(help: "See --subscriber-urls: 0 puts a room's portals on its device's node when both lists are the same; 1 on the next one.") var subscriberShift = 0
    @Option(help: "Devices file written by setup.") var devices: String
    @Option(help: "Use the first N devices of the file (default: all).") var count: Int?
    @Option(help: "Portals per room.") var subscribersPerRoom = 1
    @Option(help: "API key with scope commands:propose (setup prints it).") var apiKey: String
    @Option(help: "Access token of a member of the org (the operator): the portals' Authorization.") var userJwt: String
    @Option(help: "Kind of the proposed commands: must be auto-approved by the org.") var kind = "bench.room"
    @Option(help: "Event messages: progress (command.progress), log (one execution.log per message) or logs (batches of --batch lines).") var source = EventSource.progress
    @Option(help: "Filler bytes in each event (sizes the frame).") var payloadBytes = 0
    @Option(help: "Lines per logs message (source logs).") var batch = 50
    @Option(help: "Event messages per device not yet answered by the hub (default: 32 for progress, the hub's queue-message cap; 16 for log).") var ackWindow: Int?
    @Option(help: "Events per device accepted (or in flight) and not yet received by its room's pacer portal.") var deliveryWindow = 256
    @Option(help: "Event messages unanswered by the hub over all devices, per device node (the hub's PostgreSQL pool queues at most 256 callers).") var maxInFlight = 128
    @Option(help: "Events sent and not yet received by their room's pacer portal over all devices, per device node (the hub's history writer holds 10,000 per lane).") var maxUndelivered = 2048
    @Option(help: "Offered events/s over all devices (0: as fast as the windows allow).") var rate = 0.0
    @Option(help: "Measured seconds.") var seconds = 10.0
    @Option(help: "Seconds of streaming before the measured window.") var warmup = 3.0
    @Option(help: "Seconds after the window for every accepted event to reach every portal of its room.") var drain = 15.0
    @Option(help: "Event loop threads of the client.") var loops = 1
    @Option(help: "WebSocket connects pending at once while opening sockets.") var connectConcurrency = 64
    @Option(help: "HTTP requests in flight at once (proposals, device tokens).") var httpConcurrency = 32
    @Option(help: "Comma-separated hub PIDs: their CPU over the measured window.") var hubPids: String?
    @Option(help: "Comma-separated store PIDs (redis-server, postgres): their CPU over the window.") var storePids: String?
    @Option(help: "A label for the JSON.") var label = "stream"

    func validate() throws {
        guard subscribersPerRoom >= 1, deliveryWindow >= 1, seconds > 0, loops >= 1, rate >= 0 else {
            throw ValidationError("--subscribers-per-room, --delivery-window, --seconds, --loops must be positive, --rate at least 0")
        }
        if let ackWindow, ackWindow < 1 { throw ValidationError("--ack-window must be positive") }
    }

    func run() throws {
        let list = try readDevices(devices, limit: count)
        let deviceNodes = try deviceUrls.split(separator: ",").map { try parseBase(String($0), option: "--device-urls") }
        let portalNodes = try (subscriberUrls ?? deviceUrls).split(separator: ",").map { try parseBase(String($0), option: "--subscriber-urls") }
        guard !deviceNodes.isEmpty, !portalNodes.isEmpty else { throw ValidationError("no hub URL") }
        // In events: `logs` messages carry `batch` each, at most 16 messages waiting.
        let ackWindow = self.ackWindow ?? (source == .progress ? 32 : source == .logs ? 16 * batch : 16)
        let d = list.count, s = subscribersPerRoom

        // 1. One command per device, queued in its session (auto-approved), leased for an hour
        //    once claimed so the lease outlives any run.
        let t0 = monotonicNanoseconds()
        let apiKey = self.apiKey, kind = self.kind, proposeBase = deviceNodes[0].base
        _ = try blocking {
            let client = try HTTPClient()
            defer { client.shutdown() }
            return try await concurrently(d, concurrency: httpConcurrency) { i in
                let c = try await call(client, .post, "\(proposeBase)/api/v1/customer/sessions/\(list[i].session)/commands", bearer: apiKey,
                                       json: ["kind": kind, "args": ["bench": i], "visibility_timeout_seconds": 3600], expect: 201)
                guard c["state"] as? String == "queued" else { throw Failure("proposal of \(kind) is \(c["state"] ?? "nil"), expected queued (auto-approved kind?)") }
                return true
            }
        }
        // Device tokens from each device's own node.
        var tokens = [String](repeating: "", count: d)
        for (ni, node) in deviceNodes.enumerated() {
            let mine = Array(stride(from: ni, to: d, by: deviceNodes.count))
            let got = try deviceTokens(base: node.base, devices: mine.map { list[$0] }, concurrency: httpConcurrency)
            for (k, i) in mine.enumerated() { tokens[i] = got[k] }
        }
        Log.note(String(format: "%d commands proposed, %d device tokens in %.1f s", d, d, Double(monotonicNanoseconds() - t0) / 1e9))

        // 2. Client loops, devices and portals (not connected yet).
        let limit = raiseFileDescriptorLimit()
        guard limit.soft >= UInt64(d * (s + 1) + 64) else {
            throw ValidationError("\(d * (s + 1)) sockets need more descriptors than RLIMIT_NOFILE allows (\(limit.soft)); run fewer per process")
        }
        let group = try EventLoopGroup(count: loops, registry: nil)
        group.start()
        let counters = group.loops.map { _ in Counters() }
        let lanes = counters.map { PortalLane(counters: $0) }
        let total = maxInFlight * deviceNodes.count, undelivered = maxUndelivered * deviceNodes.count
        func share(_ n: Int, _ li: Int) -> Int { n / loops + (li < n % loops ? 1 : 0) }
        let sendLanes = (0..<loops).map { li in SendLane(inFlight: share(total, li), undelivered: share(undelivered, li)) }
        var agents: [[StreamingDevice]] = group.loops.map { _ in [] }
        var deviceSockets: [[SocketRamp.Socket]] = group.loops.map { _ in [] }
        var portals: [[Portal]] = group.loops.map { _ in [] }
        var portalSockets: [[SocketRamp.Socket]] = group.loops.map { _ in [] }
        var spread = 0
        for (i, dev) in list.enumerated() {
            let li = i % loops
            let agent = StreamingDevice(index: i, device: dev, counters: counters[li], lane: sendLanes[li], source: source, ackWindow: ackWindow,
                                        deliveryWindow: deliveryWindow, payloadBytes: payloadBytes, batch: batch)
            agents[li].append(agent)
            let dn = deviceNodes[i % deviceNodes.count]
            var o = benchSocketOptions(host: dn.host, port: dn.port, path: "/ws/device")
            o.headers = [("Authorization", "Bearer " + tokens[i])]
            deviceSockets[li].append(SocketRamp.Socket(options: o, delegate: agent))
            let pn = portalNodes[(i + subscriberShift) % portalNodes.count]
            var po = benchSocketOptions(host: pn.host, port: pn.port, path: "/ws/customer")
            po.headers = [("Authorization", "Bearer " + userJwt)]
            for k in 0..<s {
                // The pacer (k == 0) shares the device's loop; the others take the loops in turn.
                let pl = k == 0 ? li : spread % loops
                if k != 0 { spread += 1 }
                let portal = Portal(index: i * s + k, room: "session:" + dev.session, lane: lanes[pl], pacer: k == 0 ? agent : nil)
                portals[pl].append(portal)
                portalSockets[pl].append(SocketRamp.Socket(options: po, delegate: portal))
            }
        }
        func open(_ sockets: [[SocketRamp.Socket]], what: String) {
            for (li, loop) in group.loops.enumerated() {
                let ramp = SocketRamp(loop: loop, sockets: sockets[li], concurrency: max(1, connectConcurrency / loops)) { k, result in
                    if case .failure(let error) = result { Problems.add("\(what) \(k) on loop \(li): connect: \(error)") }
                }
                loop.execute { ramp.pump() }
            }
        }
        func waitFor(_ name: Counters.Name, _ n: Int, _ what: String) throws {
            let t = monotonicNanoseconds()
            let deadline = t + UInt64((30 + Double(n) / 50) * 1e9)
            while counters.total(name) < n {
                if monotonicNanoseconds() > deadline || Problems.count > 0 {
                    throw Failure("\(counters.total(name)) of \(n) \(what) after \(Double(monotonicNanoseconds() - t) / 1e9) s; problems: \(Problems.list)")
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            Log.note(String(format: "%d %@ in %.1f s", n, what, Double(monotonicNanoseconds() - t) / 1e9))
        }

        // 3. Portals first (so they see everything from the claim on), then the devices.
        open(portalSockets, what: "portal")
        try waitFor(.portalsReady, d * s, "portals subscribed")
        open(deviceSockets, what: "device")
        try waitFor(.devicesReady, d, "devices holding their command")

        // 4. Stream.
        let hubs = PidSet(hubPids), stores = PidSet(storePids)
        var tickers: [RateTicker] = []
        for (li, loop) in group.loops.enumerated() {
            let mine = agents[li]
            if rate > 0 {
                let ticker = RateTicker(loop: loop, devices: mine, counters: counters[li], lane: sendLanes[li], perSecond: rate * Double(mine.count) / Double(d))
                tickers.append(ticker)
                // The ticker first: it makes the lane paced, so starting devices send nothing on their own.
                loop.execute { ticker.start(); for a in mine { a.start() } }
            } else {
                loop.execute { for a in mine { a.start() } }
            }
        }
        Log.note("streaming \(source.rawValue) events: \(d) devices → \(d) rooms × \(s) portals, " +
                 (rate > 0 ? "\(rate) events/s offered" : "as fast as the windows allow") +
                 " (ack window \(ackWindow), delivery window \(deliveryWindow), \(total) in flight and \(undelivered) undelivered at most); warm-up \(warmup) s, window \(seconds) s")
        Thread.sleep(forTimeInterval: warmup)

        struct Reading { var t: UInt64; var deliveries: Int; var bytes: Int; var accepted: Int; var sent: Int; var refused: Int; var unavailable: Int; var skipped: Int
            var hub: Double?; var store: Double?; var me: Double }
        func read() -> Reading {
            Reading(t: monotonicNanoseconds(), deliveries: counters.total(.deliveries), bytes: counters.total(.deliveryBytes),
                    accepted: counters.total(.accepted), sent: counters.total(.sent), refused: counters.total(.refused),
                    unavailable: counters.total(.unavailable), skipped: counters.total(.skipped), hub: hubs.cpu, store: stores.cpu, me: selfCPUSeconds())
        }
        for (li, loop) in group.loops.enumerated() { let lane = lanes[li]; loop.execute { lane.recording = true } }
        let threadsA = hubs.threads
        let a = read()
        Thread.sleep(forTimeInterval: seconds)
        let b = read()
        let threadsB = hubs.threads
        for (li, loop) in group.loops.enumerated() { let lane = lanes[li]; loop.execute { lane.recording = false } }

        // 5. Stop, then every accepted event must reach every portal of its room.
        for (li, loop) in group.loops.enumerated() {
            let mine = agents[li]
            loop.execute { for a in mine { a.stop() } }
        }
        for ticker in tickers { ticker.loop.execute { ticker.stop() } }
        let drainLimit = monotonicNanoseconds() + UInt64(drain * 1e9)
        func unanswered() -> Int { group.loops.enumerated().reduce(0) { sum, e in sum + onLoop(e.element) { agents[e.offset].reduce(0) { $0 + $1.outstanding } } } }
        while unanswered() > 0 && monotonicNanoseconds() < drainLimit { Thread.sleep(forTimeInterval: 0.05) }
        var missing = counters.total(.accepted) * s - counters.total(.deliveries)
        while missing > 0 && monotonicNanoseconds() < drainLimit {
            Thread.sleep(forTimeInterval: 0.05)
            missing = counters.total(.accepted) * s - counters.total(.deliveries)
        }
        if missing != 0 {
            Problems.add("\(missing) deliveries missing \(drain) s after the window (accepted events × portals per room − deliveries; negative: duplicates)")
        }

        // 6. Results reported (no command left claimed), sockets closed.
        for (li, loop) in group.loops.enumerated() {
            let mine = agents[li]
            loop.execute { for a in mine { a.finish() } }
        }
        let finishLimit = monotonicNanoseconds() + 10_000_000_000
        while counters.total(.finished) < d && monotonicNanoseconds() < finishLimit { Thread.sleep(forTimeInterval: 0.05) }
        if counters.total(.finished) < d { Problems.add("\(d - counters.total(.finished)) devices without an acknowledged result 10 s after the drain") }
        var samples: [UInt64] = []
        for (li, loop) in group.loops.enumerated() {
            let lane = lanes[li], mine = portals[li]
            samples += onLoop(loop) { () -> [UInt64] in
                for p in mine { p.closing = true }
                return lane.samples
            }
        }

        let elapsed = Double(b.t - a.t) / 1e9
        let deliveries = b.deliveries - a.deliveries
        let accepted = b.accepted - a.accepted
        let hubCPU = a.hub.flatMap { x in b.hub.map { $0 - x } }
        let storeCPU = a.store.flatMap { x in b.store.map { $0 - x } }
        var pairs: [(String, Any?)] = [
            ("mode", "stream"), ("label", label), ("source", source.rawValue), ("devices", d), ("subscribers_per_room", s),
            ("subscribers", d * s), ("device_nodes", deviceNodes.map(\.base)), ("subscriber_nodes", portalNodes.map(\.base)),
            ("subscriber_shift", subscriberShift), ("client_loops", loops), ("ack_window", ackWindow), ("delivery_window", deliveryWindow),
            ("max_in_flight", total), ("max_undelivered", undelivered),
            ("offered_events_per_second", rate > 0 ? rate : nil), ("seconds", elapsed),
            ("events_sent_per_second", Double(b.sent - a.sent) / elapsed),
            ("events_accepted_per_second", Double(accepted) / elapsed),
            ("events_refused_rate_limited", b.refused - a.refused), ("events_refused_unavailable", b.unavailable - a.unavailable),
            ("events_skipped_window_blocked", b.skipped - a.skipped),
            ("deliveries", deliveries), ("deliveries_per_second", Double(deliveries) / elapsed),
            ("event_frame_bytes", deliveries > 0 ? Double(b.bytes - a.bytes) / Double(deliveries) : nil),
        ]
        pairs += latencySummary("latency", samples)
        pairs += [
            ("hub_cpu_seconds", hubCPU), ("hub_cpu_us_per_delivery", hubCPU.map { deliveries > 0 ? $0 * 1e6 / Double(deliveries) : .infinity }),
            ("hub_cpu_us_per_event", hubCPU.map { accepted > 0 ? $0 * 1e6 / Double(accepted) : .infinity }),
            ("deliveries_per_hub_cpu_second", hubCPU.map { $0 > 0 ? Double(deliveries) / $0 : .infinity }),
            ("store_cpu_seconds", storeCPU), ("store_cpu_us_per_delivery", storeCPU.map { deliveries > 0 ? $0 * 1e6 / Double(deliveries) : .infinity }),
            ("client_cpu_seconds", b.me - a.me),
            ("hub_thread_utilization", threadUtilization(threadsA, threadsB, seconds: elapsed)),
            ("other_events", counters.total(.otherEvents)), ("lagged_notices", counters.total(.lagged)),
            ("offset_jumps", counters.total(.offsetJumps)), ("missing_after_drain", missing),
            ("errors", Problems.count), ("first_errors", Problems.list),
        ]
        print(json(pairs))
        fflush(stdout)
        Foundation.exit(Problems.count == 0 && deliveries > 0 && counters.total(.offsetJumps) == 0 ? 0 : 1)
    }
}

extension EventSource: ExpressibleByArgument {}
