import HubRedis
@testable import HubStore
import Synchronization
import Testing

/// `PubSub` as its doc comments define it, on every backend.
@Suite struct PubSubConformanceTests {
    private static func index(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(n).bigEndian) { Array($0) } }

    @Test(arguments: Backend.allCases)
    func deliversToASubscriber(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let collector = MessageCollector()
            let subscription = try await pubSub.subscribe("room:1", handler: collector.handler)
            defer { subscription.cancel() }
            try await pubSub.publish("room:1", Array("hello".utf8))
            #expect(await collector.wait(for: 1))
            #expect(collector.messages == [PubSubMessage(channel: "room:1", payload: Array("hello".utf8))])
        }
    }

    @Test(arguments: Backend.allCases)
    func payloadsArriveByteForByte(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let collector = MessageCollector()
            let subscription = try await pubSub.subscribe("bytes", handler: collector.handler)
            defer { subscription.cancel() }
            let payloads = [allByteValues, bytesWithNULs, [], [0]]
            for payload in payloads { try await pubSub.publish("bytes", payload) }
            #expect(await collector.wait(for: payloads.count))
            #expect(collector.payloads == payloads)
            await expectInvalidArgument("oversized payload") {
                try await pubSub.publish("bytes", [UInt8](repeating: 0, count: StoreLimits.maxValueBytes + 1))
            }
            await expectInvalidArgument("empty channel publish") { try await pubSub.publish("", [1]) }
            await expectInvalidArgument("empty channel subscribe") { _ = try await pubSub.subscribe("", handler: { _ in }) }
        }
    }

    @Test(arguments: Backend.allCases)
    func oneThousandMessagesArriveInPublishOrder(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let collector = MessageCollector()
            let subscription = try await pubSub.subscribe("ordered", handler: collector.handler)
            defer { subscription.cancel() }
            for n in 0..<1_000 { try await pubSub.publish("ordered", Self.index(n)) }
            #expect(await collector.wait(for: 1_000))
            #expect(collector.payloads == (0..<1_000).map(Self.index))
        }
    }

    @Test(arguments: Backend.allCases)
    func twoSubscribersOfOneChannelBothReceiveAndCancelIsLocal(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let first = MessageCollector()
            let second = MessageCollector()
            let a = try await pubSub.subscribe("shared", handler: first.handler)
            let b = try await pubSub.subscribe("shared", handler: second.handler)
            defer { b.cancel() }
            for n in 0..<10 { try await pubSub.publish("shared", Self.index(n)) }
            #expect(await first.wait(for: 10))
            #expect(await second.wait(for: 10))
            #expect(first.payloads == (0..<10).map(Self.index))
            #expect(second.payloads == (0..<10).map(Self.index))

            a.cancel()
            a.cancel()   // idempotent
            for n in 10..<20 { try await pubSub.publish("shared", Self.index(n)) }
            #expect(await second.wait(for: 20))
            #expect(second.payloads == (0..<20).map(Self.index))
            // The second subscriber got everything published after the cancel: had the first
            // still been subscribed, it would have too by now.
            #expect(first.count == 10)
        }
    }

    @Test(arguments: Backend.allCases)
    func noHandlerCallStartsAfterCancelReturns(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let cancelReturned = Atomic<Bool>(false)
            let lateCalls = Atomic<Int>(0)
            let calls = Atomic<Int>(0)
            let subscription = try await pubSub.subscribe("flood") { _ in
                calls.add(1, ordering: .relaxed)
                if cancelReturned.load(ordering: .acquiring) { lateCalls.add(1, ordering: .relaxed) }
            }
            let stop = Atomic<Bool>(false)
            let publisher = Task {
                var n = 0
                while !stop.load(ordering: .acquiring) {
                    try await pubSub.publish("flood", Self.index(n))
                    n += 1
                    if n % 64 == 0 { await Task.yield() }
                }
            }
            #expect(await eventually(timeout: .seconds(20)) { calls.load(ordering: .relaxed) >= 50 })
            subscription.cancel()
            cancelReturned.store(true, ordering: .releasing)
            let settled = calls.load(ordering: .relaxed)
            // Messages keep coming after the cancel; none may reach the handler.
            for n in 0..<200 { try await pubSub.publish("flood", Self.index(n)) }
            stop.store(true, ordering: .releasing)
            try await publisher.value
            try await Task.sleep(for: .milliseconds(100))
            #expect(lateCalls.load(ordering: .relaxed) == 0)
            #expect(calls.load(ordering: .relaxed) == settled)
        }
    }

    @Test(arguments: Backend.allCases)
    func aHandlerMayCancelItsOwnSubscription(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let box = Mutex<PubSubSubscription?>(nil)
            let calls = Atomic<Int>(0)
            let subscription = try await pubSub.subscribe("once") { _ in
                calls.add(1, ordering: .relaxed)
                box.withLock { $0 }?.cancel()
            }
            box.withLock { $0 = subscription }
            let witness = MessageCollector()
            let other = try await pubSub.subscribe("once", handler: witness.handler)
            defer { other.cancel() }
            for n in 0..<5 { try await pubSub.publish("once", Self.index(n)) }
            #expect(await witness.wait(for: 5))
            try await Task.sleep(for: .milliseconds(50))
            #expect(calls.load(ordering: .relaxed) == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func channelsDoNotCrossTalk(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            let room = MessageCollector()
            let room2 = MessageCollector()
            let glob = MessageCollector()
            let subscriptions = [
                try await pubSub.subscribe("room", handler: room.handler),
                try await pubSub.subscribe("room2", handler: room2.handler),
                try await pubSub.subscribe("room*", handler: glob.handler),
            ]
            defer { subscriptions.forEach { $0.cancel() } }
            try await pubSub.publish("room2", [2])
            try await pubSub.publish("nobody", [0])
            try await pubSub.publish("room", [1])
            try await pubSub.publish("room*", [3])
            #expect(await room.wait(for: 1))
            #expect(await room2.wait(for: 1))
            #expect(await glob.wait(for: 1))
            try await Task.sleep(for: .milliseconds(50))
            #expect(room.messages == [PubSubMessage(channel: "room", payload: [1])])
            #expect(room2.messages == [PubSubMessage(channel: "room2", payload: [2])])
            // A channel name is never a pattern.
            #expect(glob.messages == [PubSubMessage(channel: "room*", payload: [3])])
        }
    }

    @Test(arguments: Backend.allCases)
    func resubscribingAfterTheLastCancelWorks(_ backend: Backend) async throws {
        try await withPubSub(backend) { pubSub async throws in
            for round in 0..<5 {
                let collector = MessageCollector()
                let subscription = try await pubSub.subscribe("again", handler: collector.handler)
                try await pubSub.publish("again", [UInt8(round)])
                #expect(await collector.wait(for: 1))
                #expect(collector.payloads == [[UInt8(round)]])
                subscription.cancel()
            }
        }
    }

    /// Redis only: several local subscriptions share one Redis subscription, dropped with the
    /// last of them; and a message crosses between two stores (two nodes).
    @Test func redisSharesOneSubscriptionAndCrossesNodes() async throws {
        try await TestEnvironment.withRedis { client, configuration, namespace in
            let nodeA = RedisPubSub(client: client, subscriberConfiguration: configuration, loop: TestEnvironment.group.loops[1], namespace: namespace)
            let nodeB = RedisPubSub(client: client, subscriberConfiguration: configuration, loop: TestEnvironment.group.loops[0], namespace: namespace)
            defer { nodeA.close(); nodeB.close() }
            let redisChannel = RedisArgument(namespace.key("pubsub", "dev:1"))
            func redisSubscribers() async throws -> Int64? {
                try await client.send(["PUBSUB", "NUMSUB", redisChannel]).array?.last?.integer
            }
            let first = MessageCollector()
            let second = MessageCollector()
            let a1 = try await nodeA.subscribe("dev:1", handler: first.handler)
            let a2 = try await nodeA.subscribe("dev:1", handler: second.handler)
            #expect(nodeA.subscriberCount("dev:1") == 2)
            #expect(try await redisSubscribers() == 1)

            try await nodeB.publish("dev:1", [42])
            #expect(await first.wait(for: 1))
            #expect(await second.wait(for: 1))

            a1.cancel()
            #expect(try await redisSubscribers() == 1)
            a2.cancel()
            #expect(nodeA.subscriberCount("dev:1") == 0)
            #expect(await eventually { (try? await redisSubscribers()) == 0 })
        }
    }
}
