import Foundation
import HubStore
import Testing

/// The embedded and the Redis lease queue, driven side by side through the same seeded random
/// operations with a clock that jumps forward, must give the same answer at every step.
///
/// Lease tokens are random per implementation, so answers are compared after normalizing:
/// each side's tokens are mapped to a label `message#attempt` when its claim hands them out,
/// and an operation on "lease L" sends each side its own token for L (or, for a foreign token,
/// the same unknown UUID to both).
@Suite struct LeaseQueueDifferentialTests {
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func embeddedAndRedisAnswerAlike(_ seed: UInt64) async throws {
        try await TestEnvironment.withRedis { client, _, namespace in
            // A retention short enough that forgetting happens within the run's clock (but far
            // longer than the run takes in real time, so Redis's real-time TTL never fires).
            let options = QueueFixture.options(maxLeaseTotal: .seconds(8), terminalRetention: .seconds(30))
            let sides: [any LeaseQueue] = [EmbeddedLeaseQueue(options: options),
                                           RedisLeaseQueue(client: client, namespace: namespace, options: options)]
            var run = DifferentialRun(seed: seed, start: StoreMillis.now())
            for step in 0..<300 {
                let operation = run.nextOperation()
                var answers: [String] = []
                for side in sides.indices {
                    answers.append(await run.apply(operation, to: sides[side], side: side))
                }
                #expect(answers[0] == answers[1], "seed \(seed) step \(step): \(operation)")
                if answers[0] != answers[1] { return }
                run.tally(answers[0])
            }
            // The run went through the interesting paths, not just empty claims.
            for kind in ["lease", "transition", "conflict", "ok(", "release ok("] {
                #expect(run.tallies[kind, default: 0] > 0, "seed \(seed): no \(kind) in \(run.tallies)")
            }
        }
    }
}

/// One operation of a differential run, in terms both sides share.
private enum DifferentialOperation: CustomStringConvertible {
    case enqueue(queue: String, message: Int, QueueMessage)
    case claim(queue: String, max: Int)
    case extend(queue: String, message: Int, lease: String, by: Duration)
    case release(queue: String, message: Int, lease: String, delay: Duration)
    case complete(queue: String, message: Int, lease: String, QueueOutcome)
    case cancel(queue: String, message: Int)
    case sweep(limit: Int)
    case status(queue: String, message: Int)
    case depth(queue: String)
    /// Lets the clock run on.
    case advance(StoreMillis)

    var description: String {
        switch self {
        case .enqueue(let q, let m, let msg):
            return "enqueue(\(q), m\(m), \(msg.priority) vt=\(msg.visibilityTimeout) max=\(msg.maxAttempts) att=\(msg.attempts))"
        case .claim(let q, let max): return "claim(\(q), max: \(max))"
        case .extend(let q, let m, let lease, let by): return "extend(\(q), m\(m), \(lease), by: \(by))"
        case .release(let q, let m, let lease, let delay): return "release(\(q), m\(m), \(lease), delay: \(delay))"
        case .complete(let q, let m, let lease, let outcome): return "complete(\(q), m\(m), \(lease), ok: \(outcome.succeeded))"
        case .cancel(let q, let m): return "cancel(\(q), m\(m))"
        case .sweep(let limit): return "sweep(limit: \(limit))"
        case .status(let q, let m): return "status(\(q), m\(m))"
        case .depth(let q): return "depth(\(q))"
        case .advance(let ms): return "advance(\(ms))"
        }
    }
}

/// The state of a run: the seeded generator, the clock, the message ids, and each side's
/// token ↔ label maps.
private struct DifferentialRun {
    static let queues = ["a", "b b", "c:ü"]
    var random: SplitMix64
    let start: StoreMillis
    var now: StoreMillis
    let ids: [UUID]
    /// Labels of every lease handed out (same on both sides), with its queue and message.
    var leases: [(label: String, queue: String, message: Int)] = []
    var tokens: [[String: UUID]] = [[:], [:]]
    var labels: [[UUID: String]] = [[:], [:]]
    let foreign = UUID()
    var tallies: [String: Int] = [:]

    init(seed: UInt64, start: StoreMillis) {
        random = SplitMix64(seed: seed)
        self.start = start
        now = start
        var ids: [UUID] = []
        for _ in 0..<24 {
            let (a, b) = (random.next(), random.next())
            ids.append(UUID(uuid: withUnsafeBytes(of: (a, b)) { raw in
                (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
                 raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15])
            }))
        }
        self.ids = ids
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    mutating func nextOperation() -> DifferentialOperation {
        let queue = Self.queues[int(0...Self.queues.count - 1)]
        let message = int(0...ids.count - 1)
        let roll = int(0...99)
        switch roll {
        case 0..<10:
            return .advance(StoreMillis(int(1...2_500)))
        case 10..<32:
            let maxAttempts = int(1...3)
            let payload = (0..<int(0...6)).map { _ in UInt8(int(0...255)) }
            let msg = QueueMessage(id: ids[message], priority: QueuePriority.allCases[int(0...2)], payload: payload,
                                   visibilityTimeout: .milliseconds(int(1_000...4_000)),
                                   maxAttempts: roll == 10 ? 0 : maxAttempts, expiresAt: now + StoreMillis(int(500...30_000)),
                                   attempts: int(0...9) == 0 ? int(0...maxAttempts - 1) : 0)
            return .enqueue(queue: queue, message: message, msg)
        case 32..<52:
            return .claim(queue: queue, max: int(1...4))
        case 52..<80:
            var target = (label: "foreign", queue: queue, message: message)
            if !leases.isEmpty && int(0...9) > 0 {
                // Mostly recent leases (live ones), sometimes any (stale ones).
                let recent = max(0, leases.count - 8)
                target = leases[int(0...9) < 7 ? int(recent...leases.count - 1) : int(0...leases.count - 1)]
                if int(0...19) == 0 { target.queue = queue }
            }
            if roll < 60 {
                return .extend(queue: target.queue, message: target.message, lease: target.label, by: .milliseconds(int(500...6_000)))
            }
            if roll < 70 {
                // Often the newest lease, which is most likely still live: a release that
                // succeeds is what moves the message back in line.
                if let newest = leases.last, int(0...1) == 0 { target = newest }
                // Half at once, half after a delay (sometimes past the message's TTL).
                let delay = int(0...1) == 0 ? 0 : int(1...8_000)
                return .release(queue: target.queue, message: target.message, lease: target.label, delay: .milliseconds(delay))
            }
            let outcome = QueueOutcome(succeeded: int(0...3) > 0, result: Array(["exit 0", "exit 1"][int(0...1)].utf8))
            return .complete(queue: target.queue, message: target.message, lease: target.label, outcome)
        case 80..<86:
            return .cancel(queue: queue, message: message)
        case 86..<93:
            return .sweep(limit: int(1...5))
        case 93..<97:
            return .status(queue: queue, message: message)
        default:
            return .depth(queue: queue)
        }
    }

    /// Runs `operation` on one side and renders its answer with tokens as labels. The clock
    /// moves on a little between operations (always before side 0, so both see the same `now`).
    mutating func apply(_ operation: DifferentialOperation, to queue: any LeaseQueue, side: Int) async -> String {
        if side == 0 { now += StoreMillis(int(0...300)) }
        do {
            switch operation {
            case .advance(let ms):
                if side == 1 { now += ms }
                return "advanced"
            case .enqueue(let q, _, let message):
                return "enqueue \(try await queue.enqueue(q, message, now: now))"
            case .claim(let q, let max):
                let claim = try await queue.claim(q, max: max, now: now)
                for lease in claim.leases {
                    let label = "m\(index(lease.id))#\(lease.attempts)"
                    tokens[side][label] = lease.token
                    labels[side][lease.token] = label
                    if side == 0 { leases.append((label, q, index(lease.id))) }
                }
                let leases = claim.leases.map { "lease(\(labels[side][$0.token] ?? "?") dl+\($0.deadline - start) \($0.priority) \($0.payload))" }
                return "claim \(claim.transitions.map(render)) \(leases)"
            case .extend(let q, let m, let lease, let by):
                return "extend " + render(try await queue.extend(q, id: ids[m], token: tokens[side][lease] ?? foreign, by: by, now: now), side)
            case .release(let q, let m, let lease, let delay):
                return "release " + render(try await queue.release(q, id: ids[m], token: tokens[side][lease] ?? foreign, delay: delay, now: now), side)
            case .complete(let q, let m, let lease, let outcome):
                return "complete " + render(try await queue.complete(q, id: ids[m], token: tokens[side][lease] ?? foreign, outcome: outcome, now: now), side)
            case .cancel(let q, let m):
                return "cancel " + render(try await queue.cancel(q, id: ids[m], now: now), side)
            case .sweep(let limit):
                return "sweep \(try await queue.sweep(now: now, limit: limit).map(render))"
            case .status(let q, let m):
                return "status " + render(try await queue.status(q, id: ids[m]), side)
            case .depth(let q):
                let depth = try await queue.depth(q)
                return "depth \(depth.queued)/\(depth.claimed)"
            }
        } catch {
            return "error \(error)"
        }
    }

    mutating func tally(_ answer: String) {
        for kind in ["lease", "transition", "conflict", "ok(", "done(", "notFound", "forgotten", "error", "release ok("] where answer.contains(kind) {
            tallies[kind, default: 0] += 1
        }
    }

    func index(_ id: UUID) -> Int { ids.firstIndex(of: id) ?? -1 }

    func render(_ transition: QueueTransition) -> String {
        "transition(\(transition.queue) m\(index(transition.id)) \(transition.state.rawValue) \(transition.attempts))"
    }

    func render(_ answer: QueueAnswer, _ side: Int) -> String {
        switch answer {
        case .ok(let s): return "ok(\(render(s, side)))"
        case .alreadyDone(let s): return "done(\(render(s, side)))"
        case .conflict(let s): return "conflict(\(render(s, side)))"
        case .notFound: return "notFound"
        }
    }

    func render(_ status: QueueStatus?, _ side: Int) -> String {
        guard let s = status else { return "forgotten" }
        let token = s.leaseToken.map { labels[side][$0] ?? "?" } ?? "-"
        let deadline = s.leaseDeadline.map { "\($0 - start)" } ?? "-"
        let outcome = s.outcome.map { "\($0.succeeded) \(String(decoding: $0.result, as: UTF8.self))" } ?? "-"
        return "m\(index(s.id)) \(s.state.rawValue) \(s.attempts)/\(s.maxAttempts) \(s.priority) \(token) dl+\(deadline) \(outcome)"
    }
}

/// A small seeded generator (SplitMix64), so a failing run can be replayed from its seed.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
