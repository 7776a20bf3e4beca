import Dispatch
@testable import HubStore
import Synchronization
import Testing

/// What only the embedded stores promise beyond the shared contracts: expired entries do not
/// accumulate (bounded memory) even when nobody reads them again.
@Suite struct EmbeddedHotStateTests {
    @Test func expiredKeysAreSweptByLaterWrites() async throws {
        let kv = EmbeddedKeyValueStore()
        for n in 0..<1_000 { try await kv.set("temp\(n)", [1], ttl: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(100))
        // Nobody reads the expired keys; writes of other keys alone must remove them.
        for n in 0..<1_000 { try await kv.set("kept\(n)", [2], ttl: nil) }
        #expect(kv.storedEntryCount <= 1_000)
        #expect(try await kv.get("kept999") == [2])
    }

    @Test func expiredCountersAndStreamsAreSwept() async throws {
        let counters = EmbeddedCounterStore()
        let streams = EmbeddedStreamStore()
        for n in 0..<500 {
            _ = try await counters.increment("c\(n)", by: 1, window: .milliseconds(50))
            _ = try await streams.append("s\(n)", [1], maxLength: 10, ttl: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(100))
        for n in 0..<500 {
            _ = try await counters.increment("live\(n)", by: 1, window: .seconds(60))
            _ = try await streams.append("live\(n)", [1], maxLength: 10, ttl: nil)
        }
        #expect(counters.storedEntryCount <= 500)
        #expect(streams.storedEntryCount <= 500)
    }

    @Test func aStuckHandlersQueueIsBounded() async throws {
        let release = DispatchSemaphore(value: 0)
        let firstCall = Atomic<Bool>(true)
        let entered = Atomic<Bool>(false)
        let delivered = Atomic<Int>(0)
        let mailbox = PubSubMailbox(maxPending: 100) { _ in
            delivered.add(1, ordering: .relaxed)
            if firstCall.exchange(false, ordering: .acquiringAndReleasing) {
                entered.store(true, ordering: .releasing)
                release.wait()
            }
        }
        let message = PubSubMessage(channel: "slow", payload: [])
        mailbox.enqueue(message)
        #expect(await eventually { entered.load(ordering: .acquiring) })
        // The handler is stuck in its first call (blocking a pool thread, so briefly): the
        // queue fills to its cap, then drops.
        for _ in 0..<(100 + 10) { mailbox.enqueue(message) }
        #expect(mailbox.droppedCount == 10)
        release.signal()
        #expect(await eventually { delivered.load(ordering: .relaxed) == 1 + 100 })
        mailbox.cancel()
    }
}
