import BenchSupport
import Foundation
import HubIO
import HubWebSocket
import HubWebSocketIO

/// Which device message makes the room events.
enum EventSource: String, CaseIterable {
    /// `progress` on the claimed command → `command.progress` (status map `{"bench_t":…}`).
    case progress
    /// `log` line of the claimed command → `execution.log` (data `bench_t=… …`).
    case log
    /// `logs`: batches of `--batch` lines of the claimed command, one `execution.log` each
    /// (how a real agent ships output: one store write per batch, not per line).
    case logs
}

/// One device on `/ws/device` streaming events about the command it holds. Startup: a
/// heartbeat (marks it online), then a claim of the command `stream` proposed into its session
/// (again on `command.available` if the first claim came back empty). Then, while streaming,
/// it sends when its loop's `SendLane` budgets let it and both of its own windows allow:
///   - `ackWindow`: event messages not yet answered (the hub takes at most 32 queue messages,
///     16 waiting log messages, per socket; more is refused with `rate_limited`);
///   - `deliveryWindow`: events the hub accepted or may still accept that the room's pacer
///     portal (its first, on this loop) has not received: without it a device could queue
///     events faster than the hub fans them out, and the portals' outboxes would fill until
///     the hub closes them (`slow_consumer`), which measures the outbox, not the fan-out.
/// An event refused with `rate_limited` or `unavailable` never entered the room: counted, not
/// resent (the next event follows anyway).
/// Each event carries the device's monotonic clock (`bench_t`, ns) for the portals' latency.
/// At the end the device reports the command's result, so no command is left claimed.
/// Loop thread only.
final class StreamingDevice: WebSocketDelegate {
    let index: Int
    let device: BenchDevice
    let counters: Counters
    let source: EventSource
    let ackWindow: Int
    let deliveryWindow: Int
    let padding: String
    let lane: SendLane
    /// Events per message (lines per `logs` batch; 1 otherwise).
    let batch: Int
    /// Queued in the lane, waiting for budget.
    var waiting = false
    private(set) var ws: WebSocketConnection?
    private(set) var commandID: String?
    private var leaseToken = ""
    private var streaming = false
    private var sent = 0              // event messages written
    private var answered = 0          // ... acknowledged or refused
    private var refused = 0
    private var pacerReceived = 0     // bench events the room's pacer portal received
    private var claimPending = false
    private var resultSent = false
    private var finished = false
    /// Stopped: no new events; `finish` sends the result once every event is answered.
    private var finishing = false

    init(index: Int, device: BenchDevice, counters: Counters, lane: SendLane, source: EventSource, ackWindow: Int, deliveryWindow: Int, payloadBytes: Int,
         batch: Int = 1) {
        self.index = index
        self.batch = source == .logs ? max(1, batch) : 1
        self.lane = lane
        self.device = device
        self.counters = counters
        self.source = source
        self.ackWindow = ackWindow
        self.deliveryWindow = deliveryWindow
        padding = String(repeating: "x", count: max(0, payloadBytes))
    }

    var isReady: Bool { commandID != nil }
    var outstanding: Int { sent - answered }

    /// Both windows have room (and the device is streaming).
    var canSend: Bool {
        streaming && sent - answered < ackWindow && (sent - refused) - pacerReceived < deliveryWindow
    }

    func webSocketOpened(_ ws: WebSocketConnection) {
        self.ws = ws
        send("{\"type\":\"heartbeat\",\"id\":\"h\"}")
    }

    private func send(_ text: String) {
        guard let ws else { return }
        if ws.send(text: text) == .dropped { problem("device \(index): send dropped (connection gone)") }
    }

    private func problem(_ text: String) { Problems.add(text) }

    private func claim() {
        claimPending = true
        send("{\"type\":\"claim\",\"id\":\"c\",\"max\":1}")
    }

    func start() {
        streaming = true
        lane.offer(self)
    }

    func stop() { streaming = false }

    /// One event message now (the lane checked `canSend` and its budget); returns the events it
    /// carries.
    @discardableResult
    func sendEvent() -> Int {
        guard let commandID else { return 0 }
        if source == .logs {
            // `sent` counts events (lines); each line's seq is its event number.
            let t = monotonicNanoseconds()
            var text = "{\"type\":\"logs\",\"id\":\"e\(sent + batch)\",\"command_id\":\"\(commandID)\",\"lines\":["
            for k in 1...batch {
                if k > 1 { text += "," }
                text += "{\"stream\":\"stdout\",\"seq\":\(sent + k),\"data\":\"bench_t=\(t) \(padding)\"}"
            }
            text += "]}"
            sent += batch
            counters.bump(.sent, by: batch)
            send(text)
            return batch
        }
        sent += 1
        counters.bump(.sent)
        let t = monotonicNanoseconds()
        switch source {
        case .progress:
            send("{\"type\":\"progress\",\"id\":\"e\(sent)\",\"command_id\":\"\(commandID)\",\"lease_token\":\"\(leaseToken)\",\"status\":{\"bench_t\":\(t),\"pad\":\"\(padding)\"}}")
        case .log:
            send("{\"type\":\"log\",\"id\":\"e\(sent)\",\"command_id\":\"\(commandID)\",\"stream\":\"stdout\",\"seq\":\(sent),\"data\":\"bench_t=\(t) \(padding)\"}")
        case .logs:
            break
        }
        return 1
    }

    /// The room's pacer portal received one of this device's events.
    func delivered() {
        pacerReceived += 1
        lane.delivered()
        lane.offer(self)
    }

    /// Stops streaming; the result goes out once every event is answered.
    func finish() {
        streaming = false
        finishing = true
        maybeSendResult()
    }

    private func maybeSendResult() {
        guard finishing, !resultSent, outstanding == 0, let commandID else { return }
        resultSent = true
        send("{\"type\":\"result\",\"id\":\"r\",\"command_id\":\"\(commandID)\",\"lease_token\":\"\(leaseToken)\",\"status\":\"succeeded\",\"exit_code\":0}")
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        guard let type = jsonString(text, key: "type") else { return problem("device \(index): message without type: \(String(decoding: text.prefix(200), as: UTF8.self))") }
        let id = jsonString(text, key: "id") ?? ""
        switch type {
        case "ack":
            if id.hasPrefix("e") {
                answered += batch
                counters.bump(.accepted, by: batch)
                lane.answered(entered: true, events: batch)
                lane.offer(self)
                maybeSendResult()
            } else if id == "h" {
                // Spread the first claims over a second: a thousand at once fill the hub's
                // PostgreSQL queue, and a claim refused after its lease was taken waits for the
                // lease to lapse.
                _ = ws.channel.loop.schedule(after: UInt64.random(in: 0...1_000_000_000)) { [weak self] in
                    guard let self, self.commandID == nil, !self.claimPending else { return }
                    self.claim()
                }
            } else if id == "r" {
                finished = true
                counters.bump(.finished)
            }
        case "commands":
            claimPending = false
            guard commandID == nil else { return }
            // Parsed whole (once per device): the command object's keys sort around the
            // message's own `id`, so a byte scan could pick the wrong one.
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes: text.baseAddress!, count: text.count)) as? [String: Any],
                  let list = object["commands"] as? [[String: Any]] else {
                return problem("device \(index): unreadable commands message: \(String(decoding: text.prefix(300), as: UTF8.self))")
            }
            // Empty: the proposal is not visible yet; `command.available` brings the next claim,
            // and a timer covers a wake-up that was lost (pub/sub is at most once).
            guard let first = list.first else {
                _ = ws.channel.loop.schedule(after: UInt64.random(in: 200_000_000...500_000_000)) { [weak self] in
                    guard let self, self.commandID == nil, !self.claimPending else { return }
                    self.claim()
                }
                return
            }
            guard let cid = first["id"] as? String, let token = first["lease_token"] as? String else {
                return problem("device \(index): command without id or lease_token: \(first)")
            }
            commandID = cid
            leaseToken = token
            counters.bump(.devicesReady)
        case "command.available":
            if commandID == nil && !claimPending { claim() }
        case "error":
            let code = jsonString(text, key: "code") ?? "?"
            if id.hasPrefix("e") || (id.isEmpty && code == "rate_limited") {
                answered += batch
                refused += batch
                switch code {
                case "rate_limited": counters.bump(.refused, by: batch)
                case "unavailable": counters.bump(.unavailable, by: batch)   // the hub's store queue was full
                default: problem("device \(index): event refused: \(String(decoding: text.prefix(300), as: UTF8.self))")
                }
                lane.answered(entered: false, events: batch)
                lane.offer(self)
                maybeSendResult()
            } else if (id == "c" || id == "r") && code == "unavailable" {
                // The hub's store queue was full (1,000 devices claiming at once): retry after a
                // jittered pause, as an agent would.
                let retry = id
                _ = ws.channel.loop.schedule(after: UInt64.random(in: 20_000_000...200_000_000)) { [weak self] in
                    guard let self else { return }
                    if retry == "c" { self.claim() } else { self.resultSent = false; self.maybeSendResult() }
                }
            } else if id == "c" {
                claimPending = false
                problem("device \(index): claim refused: \(String(decoding: text.prefix(300), as: UTF8.self))")
            } else {
                problem("device \(index): error \(code) for \(id): \(String(decoding: text.prefix(300), as: UTF8.self))")
            }
        default:
            break   // command.cancel and other pushes: none expected; the run's counts show their effect
        }
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        problem("device \(index): unexpected binary message")
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        self.ws = nil
        if !finished {
            problem("device \(index) socket closed: code \(code.map { "\($0)" } ?? "none") \(reason)")
        }
    }
}
