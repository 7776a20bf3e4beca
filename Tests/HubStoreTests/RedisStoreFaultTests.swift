import Foundation
import HubRedis
import HubStore
import HubTestSupport
import Synchronization
import Testing

/// Redis crashes (SIGKILL) under the Redis-backed stores: every call ends promptly with a
/// transient `StoreError`, and the stores recover by themselves once Redis is back.
@Suite(.serialized) struct RedisStoreFaultTests {
    /// What one call of the load loop did.
    private struct Outcome {
        var error: StoreError?
        var unexpected: String?
        var duration: Duration
    }

    /// Runs a blocking call (process start, kill, wait) on a thread of its own: the
    /// cooperative pool has one thread per core, and blocking it stalls every other test.
    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    private static func connectedClient(_ server: RedisTestServer) async throws -> RedisClient {
        let client = RedisClient(configuration: server.configuration, loop: TestEnvironment.group.loops[0])
        client.start()
        guard await client.waitUntilConnected(timeout: .seconds(5)) else { throw TestSetupError("private Redis not connected") }
        return client
    }

    @Test(.timeLimit(.minutes(1)))
    func keyValueCallsFailFastWhileRedisIsDownAndRecover() async throws {
        let server = try await Self.blocking { try RedisTestServer.startPrivate() }
        defer { server.stop() }
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let kv = RedisKeyValueStore(client: client, namespace: TestEnvironment.namespace())

        let stop = Atomic<Bool>(false)
        let worker = Task { () -> [Outcome] in
            var outcomes: [Outcome] = []
            var n = 0
            while !stop.load(ordering: .acquiring) {
                n += 1
                let started = ContinuousClock.now
                var outcome = Outcome(duration: .zero)
                do {
                    try await kv.set("k\(n % 50)", [UInt8(n % 256), 0], ttl: .seconds(30))
                    let value = try await kv.get("k\(n % 50)")
                    if value != [UInt8(n % 256), 0] { outcome.unexpected = "read back \(String(describing: value))" }
                } catch let error as StoreError {
                    outcome.error = error
                } catch {
                    outcome.unexpected = "untyped error \(error)"
                }
                outcome.duration = ContinuousClock.now - started
                outcomes.append(outcome)
                if outcome.error != nil { try? await Task.sleep(for: .milliseconds(5)) }
            }
            return outcomes
        }

        try await Task.sleep(for: .milliseconds(200))
        try await Self.blocking { server.kill() }
        try await Task.sleep(for: .milliseconds(500))
        try await Self.blocking { try server.launch() }
        // Back by itself: the worker's calls succeed again, and a fresh round trip works.
        let recovered = await eventually(timeout: .seconds(10)) {
            (try? await kv.set("probe", [1], ttl: nil)) != nil
        }
        #expect(recovered)
        try await Task.sleep(for: .milliseconds(100))
        stop.store(true, ordering: .releasing)
        let outcomes = await worker.value

        let failures = outcomes.filter { $0.error != nil }
        #expect(outcomes.count > failures.count, "some calls succeeded")
        #expect(!failures.isEmpty, "the kill happened mid-stream, so some calls failed")
        for failure in failures {
            #expect(failure.error?.isTransient == true, "failed with \(String(describing: failure.error))")
            #expect(failure.duration < .seconds(1), "a failed call took \(failure.duration)")
        }
        #expect(outcomes.compactMap(\.unexpected).isEmpty, "\(outcomes.compactMap(\.unexpected).prefix(3))")
        // The last calls, after the restart, succeeded.
        #expect(outcomes.last?.error == nil)
        try await kv.set("after", [9], ttl: nil)
        #expect(try await kv.get("after") == [9])
    }

    @Test(.timeLimit(.minutes(1)))
    func aSubscriptionReceivesAgainAfterRedisRestarts() async throws {
        let server = try await Self.blocking { try RedisTestServer.startPrivate() }
        defer { server.stop() }
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let pubSub = RedisPubSub(client: client, subscriberConfiguration: server.configuration, loop: TestEnvironment.group.loops[1],
                                 namespace: TestEnvironment.namespace())
        defer { pubSub.close() }
        let collector = MessageCollector()
        let subscription = try await pubSub.subscribe("events", handler: collector.handler)
        defer { subscription.cancel() }
        try await pubSub.publish("events", Array("before".utf8))
        #expect(await collector.wait(for: 1))

        try await Self.blocking { server.kill() }
        let started = ContinuousClock.now
        do {
            try await pubSub.publish("events", Array("lost".utf8))
            Issue.record("publish succeeded with Redis down")
        } catch {
            #expect(error.isTransient, "publish failed with \(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(1))

        try await Self.blocking { try server.launch() }
        // Publish until one arrives: the subscriber reconnects and resubscribes on its own.
        let back = await eventually(timeout: .seconds(10)) {
            _ = try? await pubSub.publish("events", Array("after".utf8))
            return collector.payloads.contains(Array("after".utf8))
        }
        #expect(back)
        #expect(!collector.payloads.contains(Array("lost".utf8)))
    }
}
