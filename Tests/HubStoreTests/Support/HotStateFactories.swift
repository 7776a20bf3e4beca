import HubRedis
import HubStore
import Synchronization
import Testing

// The hot-state stores of each backend, fresh for one test: embedded ones constructed
// directly, Redis ones on the shared test Redis (or the shared test cluster) in a namespace of
// their own.

/// One hot-state store of `backend`: `embedded()` built directly, or `redis(client,
/// namespace)` on the shared test Redis in a namespace of its own.
private func withHotStore<S, T>(_ backend: Backend, embedded: () -> S, redis: (RedisClient, RedisNamespace) -> S,
                                _ body: (S) async throws -> T) async throws -> T {
    switch backend {
    case .embedded:
        return try await body(embedded())
    case .redisPostgres, .redisCluster:
        return try await TestEnvironment.withRedis(backend) { client, _, namespace in try await body(redis(client, namespace)) }
    }
}

func withKeyValue<T>(_ backend: Backend, _ body: (any KeyValueStore) async throws -> T) async throws -> T {
    try await withHotStore(backend, embedded: { EmbeddedKeyValueStore() as any KeyValueStore },
                           redis: { RedisKeyValueStore(client: $0, namespace: $1) }, body)
}

func withCounters<T>(_ backend: Backend, _ body: (any CounterStore) async throws -> T) async throws -> T {
    try await withHotStore(backend, embedded: { EmbeddedCounterStore() as any CounterStore },
                           redis: { RedisCounterStore(client: $0, namespace: $1) }, body)
}

func withStreams<T>(_ backend: Backend, _ body: (any StreamStore) async throws -> T) async throws -> T {
    try await withHotStore(backend, embedded: { EmbeddedStreamStore() as any StreamStore },
                           redis: { RedisStreamStore(client: $0, namespace: $1) }, body)
}

/// The Redis store's subscriber runs on the second loop, the command client on the first.
func withPubSub<T>(_ backend: Backend, _ body: (any PubSub) async throws -> T) async throws -> T {
    switch backend {
    case .embedded:
        return try await body(EmbeddedPubSub())
    case .redisPostgres, .redisCluster:
        return try await TestEnvironment.withRedis(backend) { client, configuration, namespace in
            let pubSub = RedisPubSub(client: client, subscriberConfiguration: configuration, loop: TestEnvironment.group.loops[1], namespace: namespace)
            defer { pubSub.close() }
            return try await body(pubSub)
        }
    }
}

/// Records `body` failing with `invalidArgument` as expected, and anything else as an issue.
func expectInvalidArgument(_ what: Comment, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("\(what): expected invalidArgument, the call succeeded", sourceLocation: sourceLocation)
    } catch StoreError.invalidArgument {
    } catch {
        Issue.record("\(what): expected invalidArgument, got \(error)", sourceLocation: sourceLocation)
    }
}

/// Every byte value once, and a few NULs in odd places.
let allByteValues: [UInt8] = (0...255).map(UInt8.init)
let bytesWithNULs: [UInt8] = [0, 0, 65, 0, 66, 0, 0xff, 0]

/// Messages a pub/sub handler received, in arrival order.
final class MessageCollector: Sendable {
    private let received = Mutex<[PubSubMessage]>([])

    var handler: @Sendable (PubSubMessage) -> Void { { [self] message in received.withLock { $0.append(message) } } }
    var messages: [PubSubMessage] { received.withLock { $0 } }
    var payloads: [[UInt8]] { messages.map(\.payload) }
    var count: Int { received.withLock { $0.count } }

    /// True once at least `count` messages arrived (within `timeout`).
    func wait(for count: Int, timeout: Duration = .seconds(5)) async -> Bool {
        await eventually(timeout: timeout) { self.count >= count }
    }
}

/// Runs a timing-sensitive scenario (something must *not* have expired yet) up to `attempts`
/// times. The machine is shared and the test process starts real servers on the cooperative
/// pool, so a task can stall for most of a second; a run whose own stopwatch shows such a stall
/// proves nothing either way. `body` gets the attempt number (for fresh keys) and returns false
/// when it stalled past its budget, *before* checking anything; true when its checks ran.
/// Every attempt stalling is an issue, so the scenario cannot pass without being checked.
func timingSensitive(attempts: Int = 12, sourceLocation: SourceLocation = #_sourceLocation, _ body: (Int) async throws -> Bool) async throws {
    for attempt in 0..<attempts {
        if try await body(attempt) { return }
        // The machine is busy (the suites of three backends run side by side on two cores): give
        // the burst a moment to pass before the next attempt.
        try await Task.sleep(for: .milliseconds(50 * (attempt + 1)))
    }
    Issue.record("all \(attempts) attempts of a timing-sensitive scenario stalled past their budget", sourceLocation: sourceLocation)
}
