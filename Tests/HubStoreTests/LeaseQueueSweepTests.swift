import Foundation
import HubRedis
@testable import HubStore
import Testing

/// The lease queue across queues and over time: `sweep` paging, terminal retention, and
/// concurrent claimers.
@Suite struct LeaseQueueSweepTests {
    @Test(arguments: Backend.allCases)
    func sweepPagesThroughDueTransitionsAcrossQueues(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let names = ["one", "two", "three"]
            var expected: Set<String> = []
            for name in names {
                for _ in 0..<4 {
                    let id = UUID()
                    _ = try await queue.enqueue(name, QueueFixture.message(id, vt: .seconds(1), now: t0), now: t0)
                    expected.insert("\(name)|\(id)|queued|1")
                }
                #expect(try await queue.claim(name, max: 10, now: t0).leases.count == 4)
            }
            // Expiring TTLs of queued messages are due too.
            for _ in 0..<3 {
                let id = UUID()
                _ = try await queue.enqueue("ttl", QueueFixture.message(id, ttl: 900, now: t0), now: t0)
                expected.insert("ttl|\(id)|expired|0")
            }
            // Not yet due: a later TTL and a later deadline.
            _ = try await queue.enqueue("ttl", QueueFixture.message(ttl: 1_001, now: t0), now: t0)
            #expect(try await queue.sweep(now: t0 + 899, limit: 10).isEmpty)
            var pages: [[QueueTransition]] = []
            while true {
                let page = try await queue.sweep(now: t0 + 1_000, limit: 4)
                pages.append(page)
                if page.count < 4 || pages.count == 10 { break }
            }
            #expect(pages.map(\.count) == [4, 4, 4, 3])
            let seen = pages.flatMap { $0 }.map { "\($0.queue)|\($0.id)|\($0.state.rawValue)|\($0.attempts)" }
            #expect(seen.count == 15 && Set(seen) == expected)
            // Due order: the TTLs (900) before the deadlines (1000).
            #expect(pages[0].prefix(3).allSatisfy { $0.state == .expired })
            for name in names { #expect(try await queue.depth(name) == QueueDepth(queued: 4, claimed: 0)) }
            #expect(try await queue.depth("ttl") == QueueDepth(queued: 1, claimed: 0))
        }
    }

    @Test(arguments: Backend.allCases)
    func terminalMessagesAreForgottenAfterTheRetentionByTheCallersClock(_ backend: Backend) async throws {
        try await withLeaseQueue(backend, options: QueueFixture.options(terminalRetention: .seconds(30))) { queue throws in
            let t0 = StoreMillis.now()
            let (canceled, completed) = (UUID(), UUID())
            _ = try await queue.enqueue("q", QueueFixture.message(canceled, now: t0), now: t0)
            _ = try await queue.enqueue("q", QueueFixture.message(completed, now: t0), now: t0)
            #expect(try await queue.cancel("q", id: canceled, now: t0).isOK)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            #expect(lease.id == completed)
            let outcome = QueueOutcome(succeeded: true, result: [42])
            #expect(try await queue.complete("q", id: completed, token: lease.token, outcome: outcome, now: t0).isOK)
            // (30 s: the retention also bounds the keys' real TTL on Redis, which a busy machine must
            // not reach mid-test.) Within the retention: still known, repeats answered, re-enqueue refused.
            #expect(try await queue.sweep(now: t0 + 29_999, limit: 10).isEmpty)
            #expect(try await queue.status("q", id: canceled)?.state == .canceled)
            #expect(try await queue.enqueue("q", QueueFixture.message(canceled, now: t0), now: t0 + 29_999) == false)
            #expect(try await queue.complete("q", id: completed, token: lease.token, outcome: outcome, now: t0 + 29_999).status?.state == .succeeded)
            // Past it: a sweep forgets them (no transition to report)...
            #expect(try await queue.sweep(now: t0 + 30_000, limit: 10).isEmpty)
            #expect(try await queue.status("q", id: canceled) == nil)
            #expect(try await queue.status("q", id: completed) == nil)
            #expect(try await queue.complete("q", id: completed, token: lease.token, outcome: outcome, now: t0 + 30_000) == .notFound)
            // ...and the id may be enqueued afresh.
            #expect(try await queue.enqueue("q", QueueFixture.message(canceled, now: t0), now: t0 + 30_000))
            #expect(try await queue.status("q", id: canceled) == QueueStatus(id: canceled, state: .queued, attempts: 0, maxAttempts: 3, priority: .default))
        }
    }

    @Test(arguments: Backend.allCases)
    func touchingAMessagePastItsRetentionForgetsIt(_ backend: Backend) async throws {
        try await withLeaseQueue(backend, options: QueueFixture.options(terminalRetention: .seconds(2))) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, payload: [1], now: t0), now: t0)
            _ = try await queue.cancel("q", id: id, now: t0)
            #expect(try await queue.cancel("q", id: id, now: t0 + 1_999).isConflict)
            #expect(try await queue.cancel("q", id: id, now: t0 + 2_000) == .notFound)
            #expect(try await queue.status("q", id: id) == nil)
            #expect(try await queue.enqueue("q", QueueFixture.message(id, payload: [2], now: t0), now: t0 + 2_000))
            #expect(try await queue.claim("q", max: 1, now: t0 + 2_000).leases.map(\.payload) == [[2]])
            // The old incarnation's retention entry does not touch the new one.
            #expect(try await queue.sweep(now: t0 + 5_000, limit: 10).isEmpty)
            #expect(try await queue.status("q", id: id)?.state == .claimed)
        }
    }

    @Test(arguments: Backend.allCases)
    func retentionInRealTime(_ backend: Backend) async throws {
        try await withLeaseQueue(backend, options: QueueFixture.options(terminalRetention: .milliseconds(800))) { queue throws in
            // 800 ms, not less: the status check right after the cancel must still find the
            // message on a loaded machine (Redis's retention TTL runs in real time).
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, now: t0), now: t0)
            _ = try await queue.cancel("q", id: id, now: t0)
            #expect(try await queue.status("q", id: id)?.state == .canceled)
            let forgotten = try await eventually(timeout: .seconds(5)) {
                _ = try await queue.sweep(now: .now(), limit: 10)
                return try await queue.status("q", id: id) == nil
            }
            #expect(forgotten)
            #expect(StoreMillis.now() >= t0 + 800)
        }
    }

    /// Redis only: a live message's hash has no TTL (nothing can lose it); a terminal one's
    /// has the retention, so memory stays bounded even with no sweeper.
    @Test func redisHashesExpireOnlyOnceTerminal() async throws {
        try await TestEnvironment.withRedis { client, _, namespace in
            let queue = RedisLeaseQueue(client: client, namespace: namespace, options: QueueFixture.options(terminalRetention: .seconds(60)))
            let t0 = StoreMillis.now()
            let name = "q:ü"
            let id = UUID()
            let key = RedisArgument(RedisLeaseQueue.messageKey(namespace, name, id))
            func ttl() async throws -> Int64? { try await client.send(["PTTL", key]).integer }
            _ = try await queue.enqueue(name, QueueFixture.message(id, now: t0), now: t0)
            #expect(try await ttl() == -1)
            let lease = try #require(try await queue.claim(name, max: 1, now: t0).leases.first)
            #expect(try await ttl() == -1)
            #expect(try await queue.extend(name, id: id, token: lease.token, by: .seconds(5), now: t0).isOK)
            #expect(try await ttl() == -1)
            _ = try await queue.cancel(name, id: id, now: t0)
            let terminal = try #require(try await ttl())
            #expect(terminal > 50_000 && terminal <= 60_000)
            // Forgotten and enqueued again: live, so no TTL again.
            #expect(try await queue.enqueue(name, QueueFixture.message(id, now: t0), now: t0 + 60_000))
            #expect(try await ttl() == -1)
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentClaimersLeaseEveryMessageExactlyOnce(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            var all: Set<UUID> = []
            for i in 0..<200 {
                let id = UUID()
                all.insert(id)
                let priority = QueuePriority.allCases[i % 3]
                _ = try await queue.enqueue("busy", QueueFixture.message(id, priority, now: t0), now: t0)
            }
            let leases = try await withThrowingTaskGroup(of: [QueueLease].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [QueueLease] = []
                        while true {
                            let claim = try await queue.claim("busy", max: 1 + worker % 4, now: t0 + 1)
                            if claim.leases.isEmpty { return mine }
                            mine += claim.leases
                        }
                    }
                }
                var leases: [QueueLease] = []
                for try await mine in group { leases += mine }
                return leases
            }
            #expect(leases.count == 200)
            #expect(Set(leases.map(\.id)) == all)
            #expect(Set(leases.map(\.token)).count == 200)
            #expect(leases.allSatisfy { $0.attempts == 1 })
            #expect(try await queue.depth("busy") == QueueDepth(queued: 0, claimed: 200))
        }
    }
}
