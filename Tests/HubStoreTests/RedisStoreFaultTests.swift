import Foundation
import HubRedis
import HubStore
import HubTestSupport
import Testing

/// Redis crashes (SIGKILL) under the Redis-backed stores: every call ends promptly with a
/// transient `StoreError`, and the stores recover by themselves once Redis is back.
@Suite(.serialized) struct RedisStoreFaultTests {
    private static func connectedClient(_ server: RedisTestServer) async throws -> RedisClient {
        let client = RedisClient(configuration: server.configuration, loop: TestEnvironment.group.loops[0])
        client.start()
        guard await client.waitUntilConnected(timeout: .seconds(5)) else { throw TestSetupError("private Redis not connected") }
        return client
    }

    @Test(.timeLimit(.minutes(1)))
    func keyValueCallsFailFastWhileRedisIsDownAndRecover() async throws {
        let server = try await TestEnvironment.offPool { try RedisTestServer.startPrivate() }
        defer { server.stop() }
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let kv = RedisKeyValueStore(client: client, namespace: TestEnvironment.namespace())

        let load = FaultLoad(backoff: .milliseconds(5)) { n in
            try await kv.set("k\(n % 50)", [UInt8(n % 256), 0], ttl: .seconds(30))
            let value = try await kv.get("k\(n % 50)")
            return value == [UInt8(n % 256), 0] ? nil : "read back \(String(describing: value))"
        }

        try await Task.sleep(for: .milliseconds(200))
        try await TestEnvironment.offPool { server.kill() }
        try await Task.sleep(for: .milliseconds(500))
        try await TestEnvironment.offPool { try server.launch() }
        // Back by itself: the worker's calls succeed again, and a fresh round trip works.
        let recovered = await eventually(timeout: .seconds(10)) {
            (try? await kv.set("probe", [1], ttl: nil)) != nil
        }
        #expect(recovered)
        try await Task.sleep(for: .milliseconds(100))
        let outcomes = await load.finish()

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
        let server = try await TestEnvironment.offPool { try RedisTestServer.startPrivate() }
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

        try await TestEnvironment.offPool { server.kill() }
        let started = ContinuousClock.now
        do {
            try await pubSub.publish("events", Array("lost".utf8))
            Issue.record("publish succeeded with Redis down")
        } catch {
            #expect(error.isTransient, "publish failed with \(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(1))

        try await TestEnvironment.offPool { try server.launch() }
        // Publish until one arrives: the subscriber reconnects and resubscribes on its own.
        let back = await eventually(timeout: .seconds(10)) {
            _ = try? await pubSub.publish("events", Array("after".utf8))
            return collector.payloads.contains(Array("after".utf8))
        }
        #expect(back)
        #expect(!collector.payloads.contains(Array("lost".utf8)))
    }
}
