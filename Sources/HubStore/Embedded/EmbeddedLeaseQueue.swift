import struct Foundation.UUID
import Synchronization

/// The lease queue in process (docs/product.md §3), for the embedded mode: every operation is one short
/// critical section under a `Mutex`, and every answer matches `RedisLeaseQueue`'s for the same
/// calls (the conformance suite runs both side by side).
///
/// Per queue: a min-heap of queued messages ordered by (priority rank, enqueue sequence), so a
/// lapsed lease goes back to its original place; a min-heap of live messages by their next due
/// time (lease deadline, TTL, or the end of a release delay), for `claim`. A released message
/// waiting out its delay is in neither line nor ready heap until that due entry comes up. One more heap across all queues holds each
/// message's next due time, or for a terminal message the time it is forgotten, so `sweep`
/// visits only what is due. Heaps are never edited in the middle: a change files new entries
/// under a fresh stamp and old entries are skipped as stale (and compacted when they pile up).
/// Terminal messages are forgotten by `sweep` (or when touched) once `terminalRetention` has
/// passed by the caller's `now`, so memory stays bounded by live messages plus the retention
/// window as long as the hub's periodic sweeper runs.
public final class EmbeddedLeaseQueue: LeaseQueue {
    private let book: Mutex<LeaseQueueBook>

    public init(options: LeaseQueueOptions = .init()) {
        book = Mutex(LeaseQueueBook(retention: max(1, options.terminalRetention.storeMillis),
                                    maxLeaseTotal: max(1, options.maxLeaseTotal.storeMillis)))
    }

    public func enqueue(_ queue: String, _ message: QueueMessage, now: StoreMillis) async throws(StoreError) -> Bool {
        try StoreLimits.check(key: queue)
        try message.validate()
        return book.withLock { $0.enqueue(queue, message, now: now) }
    }

    public func claim(_ queue: String, max: Int, now: StoreMillis) async throws(StoreError) -> QueueClaim {
        try StoreLimits.check(key: queue)
        try LeaseQueueArguments.check(batch: max, "max")
        return book.withLock { $0.claim(queue, max: max, now: now) }
    }

    public func extend(_ queue: String, id: UUID, token: UUID, by: Duration, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        let by = try LeaseQueueArguments.extensionMillis(by)
        return book.withLock { $0.extend(queue, id: id, token: token, by: by, now: now) }
    }

    public func release(_ queue: String, id: UUID, token: UUID, delay: Duration, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        let delay = try LeaseQueueArguments.releaseDelayMillis(delay)
        return book.withLock { $0.release(queue, id: id, token: token, delay: delay, now: now) }
    }

    public func complete(_ queue: String, id: UUID, token: UUID, outcome: QueueOutcome, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        try StoreLimits.check(value: outcome.result)
        return book.withLock { $0.complete(queue, id: id, token: token, outcome: outcome, now: now) }
    }

    public func cancel(_ queue: String, id: UUID, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        return book.withLock { $0.cancel(queue, id: id, now: now) }
    }

    public func status(_ queue: String, id: UUID) async throws(StoreError) -> QueueStatus? {
        try StoreLimits.check(key: queue)
        return book.withLock { $0.lines[queue]?.messages[id]?.status }
    }

    public func depth(_ queue: String) async throws(StoreError) -> QueueDepth {
        try StoreLimits.check(key: queue)
        return book.withLock { book in
            guard let line = book.lines[queue] else { return QueueDepth(queued: 0, claimed: 0) }
            return QueueDepth(queued: line.queued, claimed: line.claimed)
        }
    }

    public func sweep(now: StoreMillis, limit: Int) async throws(StoreError) -> [QueueTransition] {
        try LeaseQueueArguments.check(batch: limit, "limit")
        return book.withLock { $0.sweep(now: now, limit: limit) }
    }

    /// What the queue holds: messages (live and retained), queues, and heap entries (current
    /// and stale). For tests that check memory stays proportional to the messages.
    var footprint: (messages: Int, queues: Int, heapEntries: Int) {
        book.withLock { book in
            let lineEntries = book.lines.values.reduce(0) { $0 + $1.ready.count + $1.due.count }
            return (book.messageCount, book.lines.count, book.index.due.count + lineEntries)
        }
    }
}

// MARK: - State

/// Everything the embedded queue holds; only ever touched under the `Mutex`.
struct LeaseQueueBook {
    let retention: StoreMillis
    let maxLeaseTotal: StoreMillis
    var lines: [String: LeaseQueueLine] = [:]
    var index = LeaseQueueIndex()
    /// Messages in `lines`, i.e. the live entries of `index.due`.
    var messageCount = 0

    init(retention: StoreMillis, maxLeaseTotal: StoreMillis) {
        self.retention = retention
        self.maxLeaseTotal = maxLeaseTotal
    }

    mutating func enqueue(_ queue: String, _ message: QueueMessage, now: StoreMillis) -> Bool {
        if let known = lines[queue]?.messages[message.id] {
            guard known.state.isTerminal && known.forgetAt <= now else { return false }
            forget(queue, message.id)
        }
        index.seq += 1
        let entry = LeaseQueueEntry(message, seq: index.seq)
        lines[queue, default: LeaseQueueLine()].insert(entry, queue: queue, index: &index)
        messageCount += 1
        compactIfNeeded()
        return true
    }

    mutating func claim(_ queue: String, max: Int, now: StoreMillis) -> QueueClaim {
        guard lines[queue] != nil else { return QueueClaim(leases: [], transitions: []) }
        let transitions = lines[queue]?.applyDue(queue: queue, now: now, retention: retention, index: &index) ?? []
        let leases = lines[queue]?.lease(queue: queue, max: max, now: now, maxLeaseTotal: maxLeaseTotal, index: &index) ?? []
        compactIfNeeded()
        return QueueClaim(leases: leases, transitions: transitions)
    }

    mutating func extend(_ queue: String, id: UUID, token: UUID, by: StoreMillis, now: StoreMillis) -> QueueAnswer {
        guard let entry = known(queue, id, now: now) else { return .notFound }
        guard entry.holdsLiveLease(token, now: now) else { return .conflict(entry.status) }
        let deadline = min(now + by, entry.leasedAt + maxLeaseTotal)
        let status = lines[queue]?.update(id, queue: queue, index: &index) { $0.deadline = deadline }
        compactIfNeeded()
        return status.map { .ok($0) } ?? .notFound
    }

    /// The lease ends now (its deadline becomes `now`, so the status tells when it ended);
    /// the message is dead-lettered when out of attempts, else queued again, hidden from
    /// claims until `now + delay` when there is a delay.
    mutating func release(_ queue: String, id: UUID, token: UUID, delay: StoreMillis, now: StoreMillis) -> QueueAnswer {
        guard let entry = known(queue, id, now: now) else { return .notFound }
        guard entry.holdsLiveLease(token, now: now) else { return .conflict(entry.status) }
        let status = lines[queue]?.update(id, queue: queue, index: &index) { entry in
            entry.deadline = now
            if entry.attempts >= entry.maxAttempts {
                entry.finish(.deadLettered, now: now, retention: retention)
            } else {
                entry.state = .queued
                entry.delayedUntil = delay > 0 ? now + delay : nil
            }
        }
        compactIfNeeded()
        return status.map { .ok($0) } ?? .notFound
    }

    mutating func complete(_ queue: String, id: UUID, token: UUID, outcome: QueueOutcome, now: StoreMillis) -> QueueAnswer {
        guard let entry = known(queue, id, now: now) else { return .notFound }
        if entry.state == .succeeded || entry.state == .failed {
            return entry.token == token && entry.outcome == outcome ? .alreadyDone(entry.status) : .conflict(entry.status)
        }
        guard entry.holdsLiveLease(token, now: now) else { return .conflict(entry.status) }
        let status = lines[queue]?.update(id, queue: queue, index: &index) { entry in
            entry.outcome = outcome
            entry.finish(outcome.succeeded ? .succeeded : .failed, now: now, retention: retention)
        }
        compactIfNeeded()
        return status.map { .ok($0) } ?? .notFound
    }

    mutating func cancel(_ queue: String, id: UUID, now: StoreMillis) -> QueueAnswer {
        guard let entry = known(queue, id, now: now) else { return .notFound }
        guard !entry.state.isTerminal else { return .conflict(entry.status) }
        let status = lines[queue]?.update(id, queue: queue, index: &index) { $0.finish(.canceled, now: now, retention: retention) }
        compactIfNeeded()
        return status.map { .ok($0) } ?? .notFound
    }

    /// Walks the cross-queue due heap in (due time, id, queue) order: applies due transitions
    /// (at most `limit`) and forgets terminal messages past their retention (at most
    /// `maxPurgesPerSweep`, not counted as transitions).
    mutating func sweep(now: StoreMillis, limit: Int) -> [QueueTransition] {
        var transitions: [QueueTransition] = []
        var purged = 0
        while let top = index.due.min, top.at <= now {
            guard let entry = lines[top.queue]?.messages[top.id], entry.stamp == top.stamp else {
                index.due.popMin()
                continue
            }
            guard transitions.count < limit && purged < LeaseQueueArguments.maxPurgesPerSweep else { break }
            index.due.popMin()
            if entry.state.isTerminal {
                forget(top.queue, top.id)
                purged += 1
            } else if let transition = lines[top.queue]?.applyDue(top.id, queue: top.queue, now: now, retention: retention, index: &index) {
                transitions.append(transition)
            }
        }
        compactIfNeeded()
        return transitions
    }

    /// The message, unless the queue does not know it or it is terminal and past its retention
    /// by `now` (then it is forgotten here, as a sweep would have).
    private mutating func known(_ queue: String, _ id: UUID, now: StoreMillis) -> LeaseQueueEntry? {
        guard let entry = lines[queue]?.messages[id] else { return nil }
        guard entry.state.isTerminal && entry.forgetAt <= now else { return entry }
        forget(queue, id)
        return nil
    }

    private mutating func forget(_ queue: String, _ id: UUID) {
        guard lines[queue]?.messages.removeValue(forKey: id) != nil else { return }
        messageCount -= 1
        if lines[queue]?.messages.isEmpty == true { lines[queue] = nil }
    }

    /// Drops stale heap entries once they outnumber live ones (amortized O(1) per change).
    private mutating func compactIfNeeded() {
        guard index.due.count > 2 * messageCount + 64 else { return }
        let lines = self.lines
        index.due.compact { entry in lines[entry.queue]?.messages[entry.id]?.stamp == entry.stamp }
    }
}

/// What the whole queue shares: the due heap across queues, the enqueue sequence, and the
/// stamp that tells a current heap entry from a stale one.
struct LeaseQueueIndex {
    var due = LeaseQueueHeap<LeaseQueueGlobalDue>()
    var seq: Int64 = 0
    private var lastStamp: UInt64 = 0

    /// Unique for the life of the queue, even across a forgotten id enqueued again.
    mutating func stamp() -> UInt64 {
        lastStamp += 1
        return lastStamp
    }
}

/// One queue: its messages (live and retained terminal ones) and its two heaps.
struct LeaseQueueLine {
    var messages: [UUID: LeaseQueueEntry] = [:]
    var ready = LeaseQueueHeap<LeaseQueueReady>()
    var due = LeaseQueueHeap<LeaseQueueLineDue>()
    var queued = 0
    var claimed = 0

    mutating func insert(_ entry: LeaseQueueEntry, queue: String, index: inout LeaseQueueIndex) {
        var entry = entry
        count(entry.state, +1)
        file(&entry, queue: queue, index: &index)
        messages[entry.id] = entry
    }

    /// Applies `change` to message `id` and refiles it; returns its new status.
    mutating func update(_ id: UUID, queue: String, index: inout LeaseQueueIndex, _ change: (inout LeaseQueueEntry) -> Void) -> QueueStatus? {
        guard var entry = messages[id] else { return nil }
        count(entry.state, -1)
        change(&entry)
        count(entry.state, +1)
        file(&entry, queue: queue, index: &index)
        messages[id] = entry
        compactIfNeeded()
        return entry.status
    }

    /// Applies every due transition of this queue, in (due time, id) order.
    mutating func applyDue(queue: String, now: StoreMillis, retention: StoreMillis, index: inout LeaseQueueIndex) -> [QueueTransition] {
        var transitions: [QueueTransition] = []
        while let top = due.min, top.at <= now {
            due.popMin()
            guard let entry = messages[top.id], entry.stamp == top.stamp, !entry.state.isTerminal else { continue }
            if let transition = applyDue(top.id, queue: queue, now: now, retention: retention, index: &index) {
                transitions.append(transition)
            }
        }
        return transitions
    }

    /// The due transition of live message `id`: expired when its TTL lapsed, else a lapsed
    /// lease goes back in line at its original place, or is dead-lettered out of attempts.
    /// A released message whose delay is over becomes claimable again: no transition (its
    /// state stays `queued`), so nil.
    mutating func applyDue(_ id: UUID, queue: String, now: StoreMillis, retention: StoreMillis, index: inout LeaseQueueIndex) -> QueueTransition? {
        guard let entry = messages[id], !entry.state.isTerminal else { return nil }
        let next: QueueState
        if entry.expiresAt <= now {
            next = .expired
        } else if entry.state == .claimed, let deadline = entry.deadline, deadline <= now {
            next = entry.attempts >= entry.maxAttempts ? .deadLettered : .queued
        } else {
            if entry.state == .queued, let until = entry.delayedUntil, until <= now {
                _ = update(id, queue: queue, index: &index) { $0.delayedUntil = nil }
            }
            return nil
        }
        let status = update(id, queue: queue, index: &index) { entry in
            if next == .queued { entry.state = .queued } else { entry.finish(next, now: now, retention: retention) }
        }
        return status.map { QueueTransition(queue: queue, id: id, state: $0.state, attempts: $0.attempts) }
    }

    /// Leases up to `max` messages from the head of the line.
    mutating func lease(queue: String, max: Int, now: StoreMillis, maxLeaseTotal: StoreMillis, index: inout LeaseQueueIndex) -> [QueueLease] {
        var leases: [QueueLease] = []
        while leases.count < max, let top = ready.popMin() {
            guard let entry = messages[top.id], entry.stamp == top.stamp, entry.state == .queued else { continue }
            let token = UUID()
            let deadline = now + min(entry.visibility, maxLeaseTotal)
            _ = update(top.id, queue: queue, index: &index) { entry in
                entry.state = .claimed
                entry.attempts += 1
                entry.token = token
                entry.deadline = deadline
                entry.leasedAt = now
            }
            leases.append(QueueLease(id: entry.id, token: token, deadline: deadline, attempts: entry.attempts + 1,
                                     priority: entry.priority, payload: entry.payload))
        }
        return leases
    }

    /// Files `entry` under a fresh stamp in the heaps its state needs.
    private mutating func file(_ entry: inout LeaseQueueEntry, queue: String, index: inout LeaseQueueIndex) {
        entry.stamp = index.stamp()
        let at = entry.nextDue
        switch entry.state {
        case .queued:
            // A released message waiting out its delay is not in line yet: its due entry
            // (at the delay's end) puts it there.
            if entry.delayedUntil == nil {
                ready.push(LeaseQueueReady(rank: entry.priority.rank, seq: entry.seq, id: entry.id, stamp: entry.stamp))
            }
            due.push(LeaseQueueLineDue(at: at, key: entry.key, id: entry.id, stamp: entry.stamp))
        case .claimed:
            due.push(LeaseQueueLineDue(at: at, key: entry.key, id: entry.id, stamp: entry.stamp))
        default:
            break
        }
        index.due.push(LeaseQueueGlobalDue(at: at, key: entry.key, queue: queue, id: entry.id, stamp: entry.stamp))
    }

    private mutating func count(_ state: QueueState, _ delta: Int) {
        if state == .queued { queued += delta } else if state == .claimed { claimed += delta }
    }

    private mutating func compactIfNeeded() {
        let messages = self.messages
        if ready.count > 2 * queued + 64 {
            ready.compact { messages[$0.id]?.stamp == $0.stamp }
        }
        if due.count > 2 * (queued + claimed) + 64 {
            due.compact { messages[$0.id]?.stamp == $0.stamp }
        }
    }
}

/// One message as the embedded queue keeps it.
struct LeaseQueueEntry {
    let id: UUID
    /// `id.uuidString`: the tie-break between equal due times, as in Redis's sorted sets.
    let key: String
    let priority: QueuePriority
    let payload: [UInt8]
    let visibility: StoreMillis
    let maxAttempts: Int
    let expiresAt: StoreMillis
    /// Enqueue order: the message's place in line for good.
    let seq: Int64
    var attempts: Int
    var state: QueueState = .queued
    var token: UUID?
    var deadline: StoreMillis?
    var leasedAt: StoreMillis = 0
    /// Set while a released message waits out its delay: it is claimable from then on.
    var delayedUntil: StoreMillis?
    var outcome: QueueOutcome?
    /// When a terminal message is forgotten.
    var forgetAt: StoreMillis = .max
    /// Which heap entries are current.
    var stamp: UInt64 = 0

    init(_ message: QueueMessage, seq: Int64) {
        id = message.id
        key = message.id.uuidString
        priority = message.priority
        payload = message.payload
        visibility = message.visibilityTimeout.storeMillis
        maxAttempts = message.maxAttempts
        expiresAt = message.expiresAt
        self.seq = seq
        attempts = message.attempts
        if let lease = message.lease {
            state = .claimed
            token = lease.token
            deadline = lease.deadline
            leasedAt = lease.leasedAt
        }
    }

    var status: QueueStatus {
        QueueStatus(id: id, state: state, attempts: attempts, maxAttempts: maxAttempts, priority: priority,
                    leaseToken: token, leaseDeadline: deadline, outcome: outcome)
    }

    /// When something next happens to it: TTL or the end of a release delay (queued), TTL or
    /// lease deadline (claimed), or being forgotten (terminal).
    var nextDue: StoreMillis {
        switch state {
        case .queued: return min(delayedUntil ?? expiresAt, expiresAt)
        case .claimed: return min(deadline ?? expiresAt, expiresAt)
        default: return forgetAt
        }
    }

    /// Claimed under `token`, with neither the lease nor the TTL lapsed at `now`.
    func holdsLiveLease(_ token: UUID, now: StoreMillis) -> Bool {
        guard state == .claimed, self.token == token, let deadline else { return false }
        return deadline > now && expiresAt > now
    }

    mutating func finish(_ terminal: QueueState, now: StoreMillis, retention: StoreMillis) {
        state = terminal
        forgetAt = now + retention
    }
}

/// A queued message's place in line: priority class, then enqueue order.
struct LeaseQueueReady: Comparable {
    let rank: Int
    let seq: Int64
    let id: UUID
    let stamp: UInt64

    static func < (a: Self, b: Self) -> Bool { (a.rank, a.seq) < (b.rank, b.seq) }
}

/// A live message's next due time within its queue; ties by id text, as in Redis.
struct LeaseQueueLineDue: Comparable {
    let at: StoreMillis
    let key: String
    let id: UUID
    let stamp: UInt64

    static func < (a: Self, b: Self) -> Bool { (a.at, a.key) < (b.at, b.key) }
}

/// A message's next due time across queues; ties by id text, then the queue name's bytes:
/// the order of Redis's sorted set member `id ++ queue`.
struct LeaseQueueGlobalDue: Comparable {
    let at: StoreMillis
    let key: String
    let queue: String
    let id: UUID
    let stamp: UInt64

    static func < (a: Self, b: Self) -> Bool {
        if a.at != b.at { return a.at < b.at }
        if a.key != b.key { return a.key < b.key }
        return a.queue.utf8.lexicographicallyPrecedes(b.queue.utf8)
    }
}
