import struct Foundation.UUID
import HubRedis

/// The lease queue on Redis (docs/product.md §3): every operation is one Lua script
/// (`RedisLeaseQueueScripts`, where the key layout is described), so any number of hub nodes
/// may claim, extend, release, complete and sweep the same queues concurrently.
///
/// Cluster-ready layout: queues are hashed into `bucketCount` buckets, and every key of a
/// bucket carries the hash tag `{qb<k>}`, so a queue's keys, its bucket's due index and its
/// bucket's enqueue sequence share one hash slot and each script touches one slot. The reaper
/// sweeps the buckets' due indexes instead of one global set (`sweep`).
///
/// Queue names may hold any characters: a queue's keys start with
/// `<ns>queue:{qb<k>}:<UTF-8 byte length>:<name>:`, which no other queue's (or the bucket
/// keys') prefix can equal, and a bucket due set's member is the fixed-length id text followed
/// by the name. `now` and lease tokens are made here, never in Lua.
public final class RedisLeaseQueue: LeaseQueue {
    /// Buckets the queues are spread over. Part of the key layout: every node must agree, and
    /// changing it orphans the queued messages (a rebuild from the records brings them back).
    /// 64 spreads the queue over up to 64 cluster shards (5 or 6 buckets per master at 12
    /// masters, docs/scaling.md) while a sweep pass stays 64 pipelined reads of (mostly empty)
    /// due sets per node: the reaper runs on every node every second, so the count multiplies.
    public static let bucketCount = 64

    private let client: RedisClient
    private let namespace: RedisNamespace
    private let retention: StoreMillis
    private let maxLeaseTotal: StoreMillis
    /// Per bucket: its due index and its enqueue sequence.
    private let bucketDue: [RedisArgument]
    private let bucketSequence: [RedisArgument]

    public init(client: RedisClient, namespace: RedisNamespace, options: LeaseQueueOptions = .init()) {
        self.client = client
        self.namespace = namespace
        retention = max(1, options.terminalRetention.storeMillis)
        maxLeaseTotal = max(1, options.maxLeaseTotal.storeMillis)
        bucketDue = (0..<Self.bucketCount).map { RedisArgument(Self.bucketPrefix(namespace, $0) + "due") }
        bucketSequence = (0..<Self.bucketCount).map { RedisArgument(Self.bucketPrefix(namespace, $0) + "seq") }
    }

    /// The bucket of a queue: CRC16 of its name, so that every node computes the same one.
    static func bucket(of queue: String) -> Int { Int(RedisClusterSlot.crc16(queue.utf8)) % bucketCount }

    /// `<ns>queue:{qb<k>}:`, the start of every key of bucket `k`.
    static func bucketPrefix(_ namespace: RedisNamespace, _ bucket: Int) -> String {
        namespace.key("queue", "{qb\(bucket)}:")
    }

    /// The key of message `id` of `queue` (tests check its TTL).
    static func messageKey(_ namespace: RedisNamespace, _ queue: String, _ id: UUID) -> String {
        Keys(namespace, queue).messagePrefix + id.uuidString
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
                                               keys: [keys.ready, keys.leased, keys.due, bucketDue[keys.bucket], bucketSequence[keys.bucket]], args: args)
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
                                               keys: [keys.ready, keys.leased, keys.due, bucketDue[keys.bucket]], args: args)
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
        let reply = try await client.storeEval(RedisLeaseQueueScripts.extend, keys: [keys.leased, keys.due, bucketDue[keys.bucket]],
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
                                               keys: [keys.ready, keys.leased, keys.due, bucketDue[keys.bucket]],
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
                                               keys: [keys.ready, keys.leased, keys.due, bucketDue[keys.bucket]],
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
                                               keys: [keys.ready, keys.leased, keys.due, bucketDue[keys.bucket]],
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

    /// Three pipelined rounds, so that a page is what one global due index would give (the
    /// embedded queue's order: due time, then member): a plain read of every bucket's due index
    /// finds the buckets with anything due (most have nothing on most passes); `sweepPeek`
    /// (read only) lists those buckets' due entries, which are merged in due order up to the
    /// `limit`-th transition (and the purge cap); then the `sweep` script runs on each bucket
    /// holding some of those, with exactly those members. On a cluster each round's commands
    /// go to the shards owning their buckets, all shards at once. The last round re-reads
    /// every message, so sweepers racing on other nodes never apply a transition twice, and it
    /// never sees more than `limit` candidates, so a page never exceeds `limit`.
    public func sweep(now: StoreMillis, limit: Int) async throws(StoreError) -> [QueueTransition] {
        try LeaseQueueArguments.check(batch: limit, "limit")
        let cap = LeaseQueueArguments.maxPurgesPerSweep
        // A bucket whose shard fails is left for the next pass; the others are swept (on a
        // cluster one shard down must not stop the reaper on the rest). The error is thrown
        // only when nothing was swept.
        var failure: RedisError?
        var pending: [Int] = []
        for (bucket, probe) in await client.sendAll(bucketDue.map { ["ZRANGEBYSCORE", $0, "-inf", RedisArgument(Int(now)), "LIMIT", "0", "1"] }).enumerated() {
            let reply: RedisValue
            do { reply = try probe.get() } catch {
                failure = error
                continue
            }
            guard let members = reply.array else { throw Self.unexpected("sweep", reply) }
            if !members.isEmpty { pending.append(bucket) }
        }
        guard !pending.isEmpty else {
            if let failure { throw StoreError(failure) }
            return []
        }
        let peeks = await client.evalAll(pending.map { bucket in
            (RedisLeaseQueueScripts.sweepPeek, [bucketDue[bucket]], [RedisArgument(Int(now)), RedisArgument(limit), RedisArgument(cap)])
        })
        var due: [(score: Int64, member: [UInt8], kind: Int64, bucket: Int)] = []
        for (bucket, peek) in zip(pending, peeks) {
            let reply: RedisValue
            do { reply = try peek.get() } catch {
                failure = error
                continue
            }
            guard let flat = reply.array, flat.count % 3 == 0 else { throw Self.unexpected("sweep", reply) }
            for i in stride(from: 0, to: flat.count, by: 3) {
                guard let member = flat[i].bytes, member.count > 36, let score = flat[i + 1].text.flatMap(Double.init),
                      let kind = flat[i + 2].integer else { throw Self.unexpected("sweep", reply) }
                due.append((Int64(score), member, kind, bucket))
            }
        }
        guard !due.isEmpty else {
            if let failure { throw StoreError(failure) }
            return []
        }
        due.sort { $0.score != $1.score ? $0.score < $1.score : $0.member.lexicographicallyPrecedes($1.member) }
        // The global walk: stop before the entry after the limit-th transition or the cap-th purge.
        var chosen: [Int: [Int]] = [:]
        var transitionsSeen = 0, purges = 0
        for (position, entry) in due.enumerated() {
            if transitionsSeen >= limit || purges >= cap { break }
            if entry.kind == 1 { transitionsSeen += 1 }
            if entry.kind == 2 { purges += 1 }
            chosen[entry.bucket, default: []].append(position)
        }
        let buckets = chosen.keys.sorted()
        let replies = await client.evalAll(buckets.map { bucket in
            (RedisLeaseQueueScripts.sweep, [bucketDue[bucket]],
             [RedisArgument(Self.bucketPrefix(namespace, bucket)), RedisArgument(Int(now)), RedisArgument(Int(retention))]
                + chosen[bucket]!.map { RedisArgument(bytes: due[$0].member) })
        })
        var transitions: [(position: Int, transition: QueueTransition)] = []
        for (bucket, result) in zip(buckets, replies) {
            let reply: RedisValue
            do { reply = try result.get() } catch {
                failure = error
                continue
            }
            let positions = chosen[bucket]!
            guard let flat = reply.array, flat.count % 5 == 0 else { throw Self.unexpected("sweep", reply) }
            for i in stride(from: 0, to: flat.count, by: 5) {
                guard let index = flat[i].integer, index >= 1, index <= positions.count,
                      let queueBytes = flat[i + 1].bytes, let queue = String(validating: queueBytes, as: UTF8.self),
                      let id = flat[i + 2].text.flatMap(UUID.init(uuidString:)),
                      let state = flat[i + 3].text.flatMap(QueueState.init(rawValue:)),
                      let attempts = flat[i + 4].integer else { throw Self.unexpected("sweep", reply) }
                transitions.append((positions[Int(index) - 1], QueueTransition(queue: queue, id: id, state: state, attempts: Int(attempts))))
            }
        }
        if transitions.isEmpty, let failure { throw StoreError(failure) }
        transitions.sort { $0.position < $1.position }
        return transitions.map(\.transition)
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
        /// The bucket whose hash tag the keys carry.
        let bucket: Int
        let ready: RedisArgument
        let leased: RedisArgument
        let due: RedisArgument
        /// The message hash prefix (`...:m:`), followed by the id's text.
        let messagePrefix: String
        var message: RedisArgument { RedisArgument(messagePrefix) }

        init(_ namespace: RedisNamespace, _ queue: String) {
            bucket = RedisLeaseQueue.bucket(of: queue)
            let base = RedisLeaseQueue.bucketPrefix(namespace, bucket) + "\(queue.utf8.count):\(queue):"
            ready = RedisArgument(base + "ready")
            leased = RedisArgument(base + "leased")
            due = RedisArgument(base + "due")
            messagePrefix = base + "m:"
        }
    }
}
