import Foundation
@testable import HubStore
import Testing

/// The embedded queue's memory follows its messages: stale heap entries (left behind by every
/// claim, extend and completion) are compacted, and terminal messages are dropped by the sweep
/// once their retention has passed.
@Suite struct EmbeddedLeaseQueueFootprintTests {
    @Test func memoryStaysProportionalToTheMessages() async throws {
        let queue = EmbeddedLeaseQueue(options: QueueFixture.options(terminalRetention: .seconds(10)))
        let t0 = StoreMillis.now()
        var now = t0
        for round in 0..<20 {
            for i in 0..<50 {
                _ = try await queue.enqueue("q\(i % 5)", QueueFixture.message(vt: .seconds(5), now: now), now: now)
            }
            for i in 0..<5 {
                for lease in try await queue.claim("q\(i)", max: 20, now: now).leases {
                    for step in 1...5 {
                        _ = try await queue.extend("q\(i)", id: lease.id, token: lease.token, by: .seconds(5), now: now + StoreMillis(step))
                    }
                    _ = try await queue.complete("q\(i)", id: lease.id, token: lease.token,
                                                 outcome: QueueOutcome(succeeded: round % 2 == 0, result: []), now: now + 10)
                }
            }
            now += 1_000
            _ = try await queue.sweep(now: now, limit: 1_000)
            let footprint = queue.footprint
            // Live messages plus at most ~10 s of retained ones; heap entries at most about
            // three per message plus the compaction slack.
            #expect(footprint.messages <= 50 * 11)
            #expect(footprint.heapEntries <= 3 * (2 * footprint.messages + 64) + 5 * 2 * 64)
        }
        // Everything ends; past the retention nothing is left.
        now += 3_600_000
        while try await queue.sweep(now: now, limit: 1_000).count == 1_000 {}
        _ = try await queue.sweep(now: now + 20_000, limit: 1_000)
        let footprint = queue.footprint
        #expect(footprint.messages == 0 && footprint.queues == 0)
        #expect(footprint.heapEntries <= 64)
    }
}
