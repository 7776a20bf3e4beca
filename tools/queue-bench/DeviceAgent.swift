import BenchSupport
import Foundation
import HubIO
import HubWebSocket
import HubWebSocketIO
import Synchronization

/// What a device agent reports to whoever drives the run (on the agent's loop).
protocol AgentOwner: AnyObject {
    /// `command.available` arrived (before the agent reacts to it).
    func available(_ agent: DeviceAgent, at: UInt64)
    /// The hub acknowledged a result: `state` is the command's state in the ack.
    func resultAcked(_ agent: DeviceAgent, commandID: String, state: String?, at: UInt64)
}

/// Counters of one loop: written by its loop only, read by the main thread.
final class LoopCounters: Sendable {
    let opened = Atomic<Int>(0)
    let ready = Atomic<Int>(0)          // heartbeat acknowledged
    let available = Atomic<Int>(0)      // command.available received
    let claims = Atomic<Int>(0)         // claim messages sent
    let emptyClaims = Atomic<Int>(0)    // claims answered with no command
    let claimed = Atomic<Int>(0)        // commands handed out
    let completed = Atomic<Int>(0)      // results acknowledged with state succeeded
    let proposed = Atomic<Int>(0)       // 201 answers to proposals
    let errors = Atomic<Int>(0)
    let retries = Atomic<Int>(0)        // claims answered queue_rebuilding/unavailable, retried
    let cancels = Atomic<Int>(0)        // command.cancel received (none expected)
    enum Counter { case opened, ready, available, claims, emptyClaims, claimed, completed, proposed, errors, retries, cancels }
    func load(_ c: Counter) -> Int {
        switch c {
        case .opened: return opened.load(ordering: .relaxed)
        case .ready: return ready.load(ordering: .relaxed)
        case .available: return available.load(ordering: .relaxed)
        case .claims: return claims.load(ordering: .relaxed)
        case .emptyClaims: return emptyClaims.load(ordering: .relaxed)
        case .claimed: return claimed.load(ordering: .relaxed)
        case .completed: return completed.load(ordering: .relaxed)
        case .proposed: return proposed.load(ordering: .relaxed)
        case .errors: return errors.load(ordering: .relaxed)
        case .retries: return retries.load(ordering: .relaxed)
        case .cancels: return cancels.load(ordering: .relaxed)
        }
    }
    @inline(__always) static func bump(_ a: borrowing Atomic<Int>, by n: Int = 1) { a.store(a.load(ordering: .relaxed) &+ n, ordering: .relaxed) }
}

/// One device on `/ws/device`, behaving like the reference agent of the contract: on
/// `command.available` it claims (`{"type":"claim","id":..,"max":M}`, one claim in flight at a
/// time; an announcement during a claim is remembered and claims again afterwards), answers
/// each command it got with `{"type":"result",..,"status":"succeeded","exit_code":0}` at once,
/// and claims again after the results were acknowledged when the batch was full or another
/// announcement came in meanwhile. Loop thread only.
final class DeviceAgent: WebSocketDelegate {
    let index: Int
    let device: BenchDevice
    let counters: LoopCounters
    let claimMax: Int
    weak var owner: AgentOwner?
    private(set) var ws: WebSocketConnection?
    private var busy = false          // a claim or its results are in flight
    private var wake = false          // command.available arrived while busy
    private var pendingResults = 0
    private var lastBatchFull = false
    private var seq = 0
    private(set) var isReady = false

    init(index: Int, device: BenchDevice, counters: LoopCounters, claimMax: Int) {
        self.index = index
        self.device = device
        self.counters = counters
        self.claimMax = claimMax
    }

    func webSocketOpened(_ ws: WebSocketConnection) {
        self.ws = ws
        // A heartbeat marks the device online (presence names this node); its ack tells the
        // run that the socket is fully set up on the hub's side.
        send("{\"type\":\"heartbeat\",\"id\":\"h\"}")
    }

    private func send(_ text: String) {
        guard let ws else { return }
        if ws.send(text: text) == .dropped { problem("device \(index): send dropped (connection gone)") }
    }

    private func problem(_ text: String) {
        LoopCounters.bump(counters.errors)
        Problems.add(text)
    }

    func claim() {
        busy = true
        wake = false
        seq &+= 1
        LoopCounters.bump(counters.claims)
        send("{\"type\":\"claim\",\"id\":\"c\(seq)\",\"max\":\(claimMax)}")
    }

    /// The claim and all its results are done: claim again if something may be waiting.
    private func settle() {
        busy = false
        if wake || lastBatchFull { claim() }
    }

    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        guard let type = jsonString(text, key: "type") else { return problem("device \(index): message without type: \(String(decoding: text.prefix(200), as: UTF8.self))") }
        switch type {
        case "command.available":
            LoopCounters.bump(counters.available)
            owner?.available(self, at: monotonicNanoseconds())
            if busy { wake = true } else { claim() }
        case "commands":
            commands(text)
        case "ack":
            let id = jsonString(text, key: "id") ?? ""
            if id == "h" {
                if !isReady { isReady = true; LoopCounters.bump(counters.ready) }
            } else if id.hasPrefix("r") {
                let commandID = jsonString(text, key: "command_id") ?? ""
                let state = jsonString(text, key: "state")
                if state == "succeeded" { LoopCounters.bump(counters.completed) } else {
                    problem("device \(index): result of \(commandID) acknowledged with state \(state ?? "nil"), expected succeeded")
                }
                owner?.resultAcked(self, commandID: commandID, state: state, at: monotonicNanoseconds())
                resultDone()
            }
        case "error":
            let id = jsonString(text, key: "id") ?? ""
            let code = jsonString(text, key: "code") ?? "?"
            if id.hasPrefix("c") {
                if code == "queue_rebuilding" || code == "unavailable" {
                    LoopCounters.bump(counters.retries)
                    ws.channel.loop.schedule(after: 100_000_000) { [weak self] in self?.claim() }
                } else {
                    problem("device \(index): claim refused: \(String(decoding: text.prefix(300), as: UTF8.self))")
                    busy = false
                }
            } else if id.hasPrefix("r") {
                problem("device \(index): result refused: \(String(decoding: text.prefix(300), as: UTF8.self))")
                resultDone()
            } else {
                problem("device \(index): error \(code): \(String(decoding: text.prefix(300), as: UTF8.self))")
            }
        case "command.cancel":
            LoopCounters.bump(counters.cancels)
            problem("device \(index): unexpected command.cancel: \(String(decoding: text.prefix(200), as: UTF8.self))")
        default:
            break   // other server messages (none defined for devices yet) are ignored
        }
    }

    private func commands(_ text: UnsafeRawBufferPointer) {
        let data = Data(bytes: text.baseAddress!, count: text.count)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = object["commands"] as? [[String: Any]] else {
            busy = false
            return problem("device \(index): unreadable commands message: \(String(decoding: text.prefix(300), as: UTF8.self))")
        }
        if list.isEmpty {
            LoopCounters.bump(counters.emptyClaims)
            busy = false
            if wake { claim() }
            return
        }
        LoopCounters.bump(counters.claimed, by: list.count)
        lastBatchFull = list.count >= claimMax
        pendingResults = list.count
        for c in list {
            guard let id = c["id"] as? String, let token = c["lease_token"] as? String else {
                problem("device \(index): command without id or lease_token: \(c)")
                pendingResults -= 1
                continue
            }
            seq &+= 1
            send("{\"type\":\"result\",\"id\":\"r\(seq)\",\"command_id\":\"\(id)\",\"lease_token\":\"\(token)\",\"status\":\"succeeded\",\"exit_code\":0}")
        }
        if pendingResults == 0 { settle() }
    }

    private func resultDone() {
        guard pendingResults > 0 else { return }
        pendingResults -= 1
        if pendingResults == 0 { settle() }
    }

    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        problem("device \(index): unexpected binary message")
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        self.ws = nil
        problem("device \(index) socket closed: code \(code.map { "\($0)" } ?? "none") \(reason)")
    }
}
