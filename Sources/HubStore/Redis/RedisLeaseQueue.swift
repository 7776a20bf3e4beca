import struct Foundation.UUID
import HubRedis

/// The lease queue on Redis (docs/product.md §3): every operation is one Lua script
/// (`RedisLeaseQueueScripts`, where the key layout is described), so any number of hub nodes
/// may claim, extend, release, complete and sweep the same queues concurrently.
///
/// Queue names may hold any characters: a queue's keys start with
/// `<ns>queue:<UTF-8 byte length>:<name>:`, which no other queue's (or the global keys')
/// prefix can equal, and the cross-queue due set's member is the fixed-length id text followed
/// by the name. `now` and lease tokens are made here, never in Lua.
public final class RedisLeaseQueue: LeaseQueue {
    private let client: RedisClient
    private let namespace: RedisNamespace
    private let retention: StoreMillis
    private let maxLeaseTotal: StoreMillis
    private let globalDue: RedisArgument
    private let sequence: RedisArgument

    public init(client: RedisClient, namespace: RedisNamespace, options: LeaseQueueOptions = .init()) {
        self.client = client
        self.namespace = namespace
        retention = max(1, options.terminalRetention.storeMillis)
        maxLeaseTotal = max(1, options.maxLeaseTotal.storeMillis)
        globalDue = RedisArgument(namespace.key("queue", "due"))
        sequence = RedisArgument(namespace.key("queue", "seq"))
    }

    public func enqueue(_ queue: String, _ message: QueueMessage, now: StoreMillis) async throws(StoreError) -> Bool {
        try StoreLimits.check(key: queue)
        try message.validate()
        let keys = Keys(namespace, queue)
        var args: [RedisArgument] = [keys.message, RedisArgument(queue), RedisArgument(message.id.uuidString),
                                     RedisArgument(Int(now)), RedisArgument(message.priority.rank),
                                     RedisArgument(bytes: message.payload),
                                     RedisArgument(Int(message.visibilityTimeout.storeMillis)),
                                     RedisArgument(message.maxAttempts), RedisArgument(Int(message.expiresAt)),
                                     RedisArgument(message.attempts)]
        if let lease = message.lease {
            args += [RedisArgument(lease.token.uuidString), RedisArgument(Int(lease.deadline)), RedisArgument(Int(lease.leasedAt))]
        }
        let reply = try await client.storeEval(RedisLeaseQueueScripts.enqueue,
                                               keys: [keys.ready, keys.leased, keys.due, globalDue, sequence], args: args)
        guard let added = reply.integer else { throw Self.unexpected("enqueue", reply) }
        return added == 1
    }

    public func claim(_ queue: String, max: Int, now: StoreMillis) async throws(StoreError) -> QueueClaim {
        try StoreLimits.check(key: queue)
        try LeaseQueueArguments.check(batch: max, "max")
        let keys = Keys(namespace, queue)
        var args: [RedisArgument] = [keys.message, RedisArgument(queue), RedisArgument(Int(now)), RedisArgument(max),
                                     RedisArgument(Int(retention)), RedisArgument(Int(maxLeaseTotal))]
        args.reserveCapacity(args.count + max)
        for _ in 0..<max { args.append(RedisArgument(UUID().uuidString)) }
        let reply = try await client.storeEval(RedisLeaseQueueScripts.claim,
                                               keys: [keys.ready, keys.leased, keys.due, globalDue], args: args)
        guard let parts = reply.array, parts.count == 2, let flatTransitions = parts[0].array, let flatLeases = parts[1].array,
              flatTransitions.count % 3 == 0, flatLeases.count % 6 == 0 else { throw Self.unexpected("claim", reply) }
        var transitions: [QueueTransition] = []
        for i in stride(from: 0, to: flatTransitions.count, by: 3) {
            guard let id = flatTransitions[i].text.flatMap(UUID.init(uuidString:)),
                  let state = flatTransitions[i + 1].text.flatMap(QueueState.init(rawValue:)),
                  let attempts = flatTransitions[i + 2].integer else { throw Self.unexpected("claim", reply) }
            transitions.append(QueueTransition(queue: queue, id: id, state: state, attempts: Int(attempts)))
        }
        var leases: [QueueLease] = []
        for i in stride(from: 0, to: flatLeases.count, by: 6) {
            guard let id = flatLeases[i].text.flatMap(UUID.init(uuidString:)),
                  let token = flatLeases[i + 1].text.flatMap(UUID.init(uuidString:)),
                  let deadline = flatLeases[i + 2].integer, let attempts = flatLeases[i + 3].integer,
                  let priority = flatLeases[i + 4].integer.flatMap(Self.priority), let payload = flatLeases[i + 5].bytes
            else { throw Self.unexpected("claim", reply) }
            leases.append(QueueLease(id: id, token: token, deadline: deadline, attempts: Int(attempts), priority: priority, payload: payload))
        }
        return QueueClaim(leases: leases, transitions: transitions)
    }

    public func extend(_ queue: String, id: UUID, token: UUID, by: Duration, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        let by = try LeaseQueueArguments.extensionMillis(by)
        let keys = Keys(namespace, queue)
        let reply = try await client.storeEval(RedisLeaseQueueScripts.extend, keys: [keys.leased, keys.due, globalDue],
                                               args: [keys.message, RedisArgument(queue), RedisArgument(id.uuidString),
                                                      RedisArgument(token.uuidString), RedisArgument(Int(by)), RedisArgument(Int(now)),
                                                      RedisArgument(Int(maxLeaseTotal))])
        return try answer(reply, id: id, "extend")
    }

    public func release(_ queue: String, id: UUID, token: UUID, delay: Duration, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        let delay = try LeaseQueueArguments.releaseDelayMillis(delay)
        let keys = Keys(namespace, queue)
        let reply = try await client.storeEval(RedisLeaseQueueScripts.release,
                                               keys: [keys.ready, keys.leased, keys.due, globalDue],
                                               args: [keys.message, RedisArgument(queue), RedisArgument(id.uuidString),
                                                      RedisArgument(token.uuidString), RedisArgument(Int(delay)), RedisArgument(Int(now)),
                                                      RedisArgument(Int(retention))])
        return try answer(reply, id: id, "release")
    }

    public func complete(_ queue: String, id: UUID, token: UUID, outcome: QueueOutcome, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        try StoreLimits.check(value: outcome.result)
        let keys = Keys(namespace, queue)
        let reply = try await client.storeEval(RedisLeaseQueueScripts.complete,
                                               keys: [keys.ready, keys.leased, keys.due, globalDue],
                                               args: [keys.message, RedisArgument(queue), RedisArgument(id.uuidString),
                                                      RedisArgument(token.uuidString), RedisArgument(outcome.succeeded ? "1" : "0"),
                                                      RedisArgument(bytes: outcome.result), RedisArgument(Int(now)),
                                                      RedisArgument(Int(retention))])
        return try answer(reply, id: id, "complete")
    }

    public func cancel(_ queue: String, id: UUID, now: StoreMillis) async throws(StoreError) -> QueueAnswer {
        try StoreLimits.check(key: queue)
        let keys = Keys(namespace, queue)
        let reply = try await client.storeEval(RedisLeaseQueueScripts.cancel,
                                               keys: [keys.ready, keys.leased, keys.due, globalDue],
                                               args: [keys.message, RedisArgument(queue), RedisArgument(id.uuidString),
                                                      RedisArgument(Int(now)), RedisArgument(Int(retention))])
        return try answer(reply, id: id, "cancel")
    }

    public func status(_ queue: String, id: UUID) async throws(StoreError) -> QueueStatus? {
        try StoreLimits.check(key: queue)
        let keys = Keys(namespace, queue)
        var command: [RedisArgument] = ["HMGET", RedisArgument(keys.messagePrefix + id.uuidString)]
        command.append(contentsOf: Self.statusFields)
        let reply = try await client.storeSend(command)
        return try Self.status(reply, id: id)
    }

    public func depth(_ queue: String) async throws(StoreError) -> QueueDepth {
        try StoreLimits.check(key: queue)
        let keys = Keys(namespace, queue)
        let reply = try await client.storeEval(RedisLeaseQueueScripts.depth, keys: [keys.due, keys.leased], args: [])
        guard let counts = reply.array, counts.count == 2, let queued = counts[0].integer, let claimed = counts[1].integer else {
            throw Self.unexpected("depth", reply)
        }
        return QueueDepth(queued: Int(queued), claimed: Int(claimed))
    }

    public func sweep(now: StoreMillis, limit: Int) async throws(StoreError) -> [QueueTransition] {
        try LeaseQueueArguments.check(batch: limit, "limit")
        let reply = try await client.storeEval(RedisLeaseQueueScripts.sweep, keys: [globalDue],
                                               args: [RedisArgument(namespace.key("queue", "")), RedisArgument(Int(now)),
                                                      RedisArgument(limit), RedisArgument(LeaseQueueArguments.maxPurgesPerSweep),
                                                      RedisArgument(Int(retention))])
        guard let flat = reply.array, flat.count % 4 == 0 else { throw Self.unexpected("sweep", reply) }
        var transitions: [QueueTransition] = []
        for i in stride(from: 0, to: flat.count, by: 4) {
            guard let queueBytes = flat[i].bytes, let queue = String(validating: queueBytes, as: UTF8.self),
                  let id = flat[i + 1].text.flatMap(UUID.init(uuidString:)),
                  let state = flat[i + 2].text.flatMap(QueueState.init(rawValue:)),
                  let attempts = flat[i + 3].integer else { throw Self.unexpected("sweep", reply) }
            transitions.append(QueueTransition(queue: queue, id: id, state: state, attempts: Int(attempts)))
        }
        return transitions
    }

    // MARK: - Replies

    /// The hash fields `status` reads, in the order `status(_:id:)` decodes them (the scripts'
    /// `STATUS_FIELDS`).
    private static let statusFields: [RedisArgument] = ["st", "att", "max", "pri", "tok", "dl", "ok", "res"]

    private func answer(_ reply: RedisValue, id: UUID, _ operation: String) throws(StoreError) -> QueueAnswer {
        guard let parts = reply.array, let kind = parts.first?.text else { throw Self.unexpected(operation, reply) }
        if kind == "nf" { return .notFound }
        guard parts.count == 2, let status = try Self.status(parts[1], id: id) else { throw Self.unexpected(operation, reply) }
        switch kind {
        case "ok": return .ok(status)
        case "done": return .alreadyDone(status)
        case "conflict": return .conflict(status)
        default: throw Self.unexpected(operation, reply)
        }
    }

    /// Decodes `HMGET st att max pri tok dl ok res`; nil when the hash does not exist.
    private static func status(_ reply: RedisValue, id: UUID) throws(StoreError) -> QueueStatus? {
        guard let fields = reply.array, fields.count == 8 else { throw unexpected("status", reply) }
        if fields[0].isNull { return nil }
        guard let state = fields[0].text.flatMap(QueueState.init(rawValue:)), let attempts = fields[1].integer,
              let maxAttempts = fields[2].integer, let priority = fields[3].integer.flatMap(priority) else {
            throw unexpected("status", reply)
        }
        var status = QueueStatus(id: id, state: state, attempts: Int(attempts), maxAttempts: Int(maxAttempts), priority: priority)
        status.leaseToken = fields[4].text.flatMap(UUID.init(uuidString:))
        status.leaseDeadline = fields[5].integer
        if let ok = fields[6].text, let result = fields[7].bytes {
            status.outcome = QueueOutcome(succeeded: ok == "1", result: result)
        }
        return status
    }

    private static func priority(_ rank: Int64) -> QueuePriority? {
        QueuePriority.allCases.first { Int64($0.rank) == rank }
    }

    private static func unexpected(_ operation: String, _ reply: RedisValue) -> StoreError {
        .backend("lease queue \(operation): unexpected reply \(String(describing: reply).prefix(200))")
    }

    /// A queue's key names.
    private struct Keys {
        let ready: RedisArgument
        let leased: RedisArgument
        let due: RedisArgument
        /// The message hash prefix (`...:m:`), followed by the id's text.
        let messagePrefix: String
        var message: RedisArgument { RedisArgument(messagePrefix) }

        init(_ namespace: RedisNamespace, _ queue: String) {
            let base = namespace.key("queue", "\(queue.utf8.count):\(queue)") + ":"
            ready = RedisArgument(base + "ready")
            leased = RedisArgument(base + "leased")
            due = RedisArgument(base + "due")
            messagePrefix = base + "m:"
        }
    }
}
