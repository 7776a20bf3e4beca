import Foundation
import HubStore

/// A fresh, empty lease queue of `backend` for one test: in process, or on the shared Redis
/// under a namespace no other test uses.
func withLeaseQueue<T>(_ backend: Backend, options: LeaseQueueOptions = .init(),
                       _ body: (any LeaseQueue) async throws -> T) async throws -> T {
    switch backend {
    case .embedded:
        return try await body(EmbeddedLeaseQueue(options: options))
    case .redisPostgres, .redisCluster:
        return try await TestEnvironment.withRedis(backend) { client, _, namespace in
            try await body(RedisLeaseQueue(client: client, namespace: namespace, options: options))
        }
    }
}

/// Builders the lease queue tests share.
enum QueueFixture {
    /// A message with test-friendly defaults: a 30 s lease, 3 attempts, a TTL of one hour
    /// from `now`.
    static func message(_ id: UUID = UUID(), _ priority: QueuePriority = .default, payload: [UInt8] = Array("{}".utf8),
                        vt: Duration = .seconds(30), maxAttempts: Int = 3, ttl: StoreMillis = 3_600_000,
                        now: StoreMillis, attempts: Int = 0) -> QueueMessage {
        QueueMessage(id: id, priority: priority, payload: payload, visibilityTimeout: vt, maxAttempts: maxAttempts,
                     expiresAt: now + ttl, attempts: attempts)
    }

    /// Options with a shorter lease cap and/or retention.
    static func options(maxLeaseTotal: Duration? = nil, terminalRetention: Duration? = nil) -> LeaseQueueOptions {
        var options = LeaseQueueOptions()
        if let maxLeaseTotal { options.maxLeaseTotal = maxLeaseTotal }
        if let terminalRetention { options.terminalRetention = terminalRetention }
        return options
    }
}

extension QueueAnswer {
    /// The status any answer but `notFound` carries.
    var status: QueueStatus? {
        switch self {
        case .ok(let s), .alreadyDone(let s), .conflict(let s): return s
        case .notFound: return nil
        }
    }

    var isOK: Bool { if case .ok = self { return true } else { return false } }
    var isConflict: Bool { if case .conflict = self { return true } else { return false } }
}
