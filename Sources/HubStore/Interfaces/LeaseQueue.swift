import struct Foundation.UUID

/// The per-device command queue of docs/product.md §3, as hot state: SQS-like leases, made stricter.
///
/// - Order: by priority class (`critical`, `default`, `bulk`), FIFO by enqueue order within a
///   class. A message whose lease lapses goes back to its original place in line.
/// - `claim` leases up to `max` messages: each gets a fresh random lease token, `attempts + 1`,
///   and a deadline of `now + visibilityTimeout`.
/// - Before claiming, and in `sweep`, due transitions are applied: a claimed message whose
///   deadline has passed is requeued, or dead-lettered when its attempts reached `maxAttempts`;
///   a queued or claimed message whose `expiresAt` has passed ends as `expired`.
/// - `release` gives a lease back early: the message goes back to its original place in line,
///   optionally hidden for a delay, or is dead-lettered when out of attempts.
/// - `extend`, `release` and `complete` need the current lease token and a live lease (deadline > now);
///   anything else is a `conflict` carrying the current status, never a silent success.
///   `complete` is idempotent: the same token and the same outcome again answer `alreadyDone`.
/// - Terminal messages are kept for `LeaseQueueOptions.terminalRetention` (to answer retries
///   and status queries), then forgotten. The durable record is the relational `commands` row;
///   this queue is rebuilt from it (with `enqueue`, which is idempotent by id) if it is lost.
///
/// Every operation is atomic (one Lua script on Redis; one critical section embedded) and
/// takes `now` from the caller: see `StoreMillis`.
public protocol LeaseQueue: Sendable {
    /// Adds `message` to `queue` (`queued`, or `claimed` under `message.lease`). False (and
    /// nothing changes) when a message with that id is already known to the queue, in any state.
    func enqueue(_ queue: String, _ message: QueueMessage, now: StoreMillis) async throws(StoreError) -> Bool
    /// Applies this queue's due transitions, then leases up to `max` (1...`StoreLimits.maxBatch`)
    /// messages in order.
    func claim(_ queue: String, max: Int, now: StoreMillis) async throws(StoreError) -> QueueClaim
    /// Moves a live lease's deadline to `now + by`, capped at `leasedAt + options.maxLeaseTotal`
    /// (`leasedAt`: when this delivery was claimed). `.ok` carries the new status.
    func extend(_ queue: String, id: UUID, token: UUID, by: Duration, now: StoreMillis) async throws(StoreError) -> QueueAnswer
    /// Gives a live lease back before its deadline (the device cannot run it now). The lease
    /// ends at once: the token is stale from now on and the status's `leaseDeadline` becomes
    /// `now`. Out of attempts (`attempts >= maxAttempts`) the message is `deadLettered` at once;
    /// otherwise it is `queued` again at its original place in line, claimable from
    /// `now + delay` (0 ... 12 h; 0: at once). Either way `.ok` carries the new status, and no
    /// later claim or sweep reports a transition for the ended lease. A stale or foreign token,
    /// a lapsed lease or a message not claimed is a `conflict`; an unknown id `notFound`.
    func release(_ queue: String, id: UUID, token: UUID, delay: Duration, now: StoreMillis) async throws(StoreError) -> QueueAnswer
    /// Ends a live lease's message as `succeeded` or `failed`, recording `outcome`.
    func complete(_ queue: String, id: UUID, token: UUID, outcome: QueueOutcome, now: StoreMillis) async throws(StoreError) -> QueueAnswer
    /// Ends a queued or claimed message as `canceled` (an outstanding lease becomes stale).
    /// A terminal message is a `conflict`.
    func cancel(_ queue: String, id: UUID, now: StoreMillis) async throws(StoreError) -> QueueAnswer
    /// The message's status, nil when the queue does not know it (never enqueued, or forgotten).
    func status(_ queue: String, id: UUID) async throws(StoreError) -> QueueStatus?
    /// Queued (including released ones still waiting out their delay) and claimed counts of
    /// one queue.
    func depth(_ queue: String) async throws(StoreError) -> QueueDepth
    /// Applies due transitions across every queue, at most `limit` of them per call (run it
    /// again while it returns `limit`). For a periodic sweeper; any node may run it concurrently.
    func sweep(now: StoreMillis, limit: Int) async throws(StoreError) -> [QueueTransition]
}

public enum QueuePriority: String, Sendable, CaseIterable, Codable {
    case critical
    case `default`
    case bulk

    /// 0 for critical, 1 for default, 2 for bulk: claim order.
    public var rank: Int {
        switch self {
        case .critical: return 0
        case .default: return 1
        case .bulk: return 2
        }
    }
}

/// What `enqueue` adds.
public struct QueueMessage: Sendable, Equatable {
    /// The command's id: unique within the queue.
    public var id: UUID
    public var priority: QueuePriority
    /// What a claim hands to the device (the command's JSON); at most `StoreLimits.maxValueBytes`.
    public var payload: [UInt8]
    /// How long a lease lasts before the message goes back in line: 1 s ... 12 h.
    public var visibilityTimeout: Duration
    /// Deliveries before dead-lettering: 1...100.
    public var maxAttempts: Int
    /// When the message's TTL lapses (it ends as `expired` if still queued or claimed).
    public var expiresAt: StoreMillis
    /// Deliveries already made (non-zero when the queue is rebuilt from the durable record).
    public var attempts: Int
    /// A delivery in progress, carried over when the queue is rebuilt from the durable record:
    /// the message starts `claimed` under this lease (which lapses at its deadline as any
    /// other), so the device that holds it keeps it. `attempts` then counts this delivery.
    public var lease: Lease?

    public struct Lease: Sendable, Equatable {
        public var token: UUID
        public var deadline: StoreMillis
        /// When this delivery was claimed (extensions are capped relative to it).
        public var leasedAt: StoreMillis

        public init(token: UUID, deadline: StoreMillis, leasedAt: StoreMillis) {
            self.token = token
            self.deadline = deadline
            self.leasedAt = leasedAt
        }
    }

    public init(id: UUID, priority: QueuePriority = .default, payload: [UInt8], visibilityTimeout: Duration = .seconds(60),
                maxAttempts: Int = 3, expiresAt: StoreMillis, attempts: Int = 0, lease: Lease? = nil) {
        self.id = id
        self.priority = priority
        self.payload = payload
        self.visibilityTimeout = visibilityTimeout
        self.maxAttempts = maxAttempts
        self.expiresAt = expiresAt
        self.attempts = attempts
        self.lease = lease
    }

    /// Throws `invalidArgument` when a field is outside its documented range.
    public func validate() throws(StoreError) {
        try StoreLimits.check(value: payload)
        guard (1...100).contains(maxAttempts) else { throw .invalidArgument("maxAttempts \(maxAttempts) outside 1...100") }
        let vt = visibilityTimeout.storeMillis
        guard vt >= 1_000 && vt <= 43_200_000 else { throw .invalidArgument("visibilityTimeout \(vt) ms outside 1 s...12 h") }
        if lease == nil {
            guard attempts >= 0 && attempts < maxAttempts else { throw .invalidArgument("attempts \(attempts) outside 0..<maxAttempts") }
        } else {
            guard attempts >= 1 && attempts <= maxAttempts else { throw .invalidArgument("attempts \(attempts) of a leased message outside 1...maxAttempts") }
        }
    }
}

/// One delivery handed out by `claim`.
public struct QueueLease: Sendable, Equatable {
    public var id: UUID
    public var token: UUID
    public var deadline: StoreMillis
    /// Deliveries including this one.
    public var attempts: Int
    public var priority: QueuePriority
    public var payload: [UInt8]

    public init(id: UUID, token: UUID, deadline: StoreMillis, attempts: Int, priority: QueuePriority, payload: [UInt8]) {
        self.id = id
        self.token = token
        self.deadline = deadline
        self.attempts = attempts
        self.priority = priority
        self.payload = payload
    }
}

public enum QueueState: String, Sendable, CaseIterable {
    case queued, claimed, succeeded, failed, canceled, expired
    case deadLettered = "dead_lettered"

    public var isTerminal: Bool { self != .queued && self != .claimed }
}

/// How a device ended a delivery.
public struct QueueOutcome: Sendable, Equatable {
    public var succeeded: Bool
    /// The result as the device reported it (exit code, output summary: the caller's encoding).
    public var result: [UInt8]

    public init(succeeded: Bool, result: [UInt8]) {
        self.succeeded = succeeded
        self.result = result
    }
}

public struct QueueStatus: Sendable, Equatable {
    public var id: UUID
    public var state: QueueState
    public var attempts: Int
    public var maxAttempts: Int
    public var priority: QueuePriority
    /// The current (or, once terminal, the last) lease's token and deadline; nil before any claim.
    public var leaseToken: UUID?
    public var leaseDeadline: StoreMillis?
    /// Set for `succeeded` and `failed`.
    public var outcome: QueueOutcome?

    public init(id: UUID, state: QueueState, attempts: Int, maxAttempts: Int, priority: QueuePriority,
                leaseToken: UUID? = nil, leaseDeadline: StoreMillis? = nil, outcome: QueueOutcome? = nil) {
        self.id = id
        self.state = state
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.priority = priority
        self.leaseToken = leaseToken
        self.leaseDeadline = leaseDeadline
        self.outcome = outcome
    }
}

/// The answer to `extend`, `release`, `complete` and `cancel`.
public enum QueueAnswer: Sendable, Equatable {
    /// Done; the status after it.
    case ok(QueueStatus)
    /// `complete` repeated with the same token and outcome: nothing changed.
    case alreadyDone(QueueStatus)
    /// Stale or foreign token, lapsed lease, or a message in the wrong state: the current status.
    case conflict(QueueStatus)
    /// The queue does not know this id.
    case notFound
}

/// A change `claim` or `sweep` made by itself, for the caller to record durably and announce.
public struct QueueTransition: Sendable, Equatable {
    public var queue: String
    public var id: UUID
    /// `.queued` (a lapsed lease went back in line), `.deadLettered` or `.expired`.
    public var state: QueueState
    public var attempts: Int

    public init(queue: String, id: UUID, state: QueueState, attempts: Int) {
        self.queue = queue
        self.id = id
        self.state = state
        self.attempts = attempts
    }
}

public struct QueueClaim: Sendable, Equatable {
    public var leases: [QueueLease]
    /// Transitions applied to this queue before leasing.
    public var transitions: [QueueTransition]

    public init(leases: [QueueLease], transitions: [QueueTransition]) {
        self.leases = leases
        self.transitions = transitions
    }
}

public struct QueueDepth: Sendable, Equatable {
    public var queued: Int
    public var claimed: Int

    public init(queued: Int, claimed: Int) {
        self.queued = queued
        self.claimed = claimed
    }
}

/// Limits every implementation applies the same way.
public struct LeaseQueueOptions: Sendable, Equatable {
    /// A delivery's deadline never moves past `leasedAt + maxLeaseTotal` (SQS: 12 h).
    public var maxLeaseTotal: Duration = .seconds(12 * 3600)
    /// Terminal messages are remembered this long after they end.
    public var terminalRetention: Duration = .seconds(24 * 3600)

    public init() {}
}
