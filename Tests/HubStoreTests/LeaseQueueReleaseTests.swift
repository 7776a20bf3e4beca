import Foundation
import HubStore
import Testing

/// `LeaseQueue.release` on both backends: a device gives a lease back before its deadline. The
/// message goes back to its original place in line (at once, or after a delay) or, out of
/// attempts, is dead-lettered; the released token is stale from then on, and the ended lease
/// never lapses later.
@Suite struct LeaseQueueReleaseTests {
    @Test(arguments: Backend.allCases)
    func releaseWithoutDelayIsClaimableAtOnceInItsOriginalPlace(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (a, b, c) = (UUID(), UUID(), UUID())
            for id in [a, b] { _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(30), now: t0), now: t0) }
            let first = try #require(try await queue.claim("q", max: 1, now: t0 + 10).leases.first)
            #expect(first.id == a)
            let released = try await queue.release("q", id: a, token: first.token, delay: .zero, now: t0 + 20)
            // Queued again, attempts kept, the lease ended now (its token is the last one).
            #expect(released == .ok(QueueStatus(id: a, state: .queued, attempts: 1, maxAttempts: 3, priority: .default,
                                                leaseToken: first.token, leaseDeadline: t0 + 20)))
            #expect(try await queue.status("q", id: a) == released.status)
            #expect(try await queue.depth("q") == QueueDepth(queued: 2, claimed: 0))
            // C comes after A and B in line; A is handed out again ahead of both, at once.
            _ = try await queue.enqueue("q", QueueFixture.message(c, vt: .seconds(30), now: t0), now: t0 + 21)
            let again = try await queue.claim("q", max: 3, now: t0 + 22)
            #expect(again.transitions.isEmpty)
            #expect(again.leases.map(\.id) == [a, b, c])
            #expect(again.leases.map(\.attempts) == [2, 1, 1])
            #expect(again.leases[0].token != first.token)
        }
    }

    @Test(arguments: Backend.allCases)
    func theReleasedTokenIsStaleAndTheEndedLeaseNeverLapses(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(10), now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            #expect(try await queue.release("q", id: id, token: lease.token, delay: .zero, now: t0 + 1_000).isOK)
            let queued = try #require(try await queue.status("q", id: id))
            // Nothing the old token does works any more, and nothing changes.
            let outcome = QueueOutcome(succeeded: true, result: [])
            #expect(try await queue.extend("q", id: id, token: lease.token, by: .seconds(5), now: t0 + 1_001) == .conflict(queued))
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: outcome, now: t0 + 1_001) == .conflict(queued))
            #expect(try await queue.release("q", id: id, token: lease.token, delay: .zero, now: t0 + 1_001) == .conflict(queued))
            // The old deadline passes without a transition: the lease ended at the release.
            #expect(try await queue.sweep(now: t0 + 10_000, limit: 10).isEmpty)
            #expect(try await queue.status("q", id: id) == queued)
            // The next delivery's token works, and a stale token still does not complete it.
            let next = try #require(try await queue.claim("q", max: 1, now: t0 + 10_001).leases.first)
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: outcome, now: t0 + 10_002).isConflict)
            #expect(try await queue.complete("q", id: id, token: next.token, outcome: outcome, now: t0 + 10_002).status?.state == .succeeded)
        }
    }

    @Test(arguments: Backend.allCases)
    func releaseWithDelayHidesTheMessageUntilTheDelayEnds(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (a, b, c) = (UUID(), UUID(), UUID())
            for id in [a, b] { _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(60), now: t0), now: t0) }
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            let released = try await queue.release("q", id: a, token: lease.token, delay: .seconds(10), now: t0 + 1_000)
            #expect(released.isOK && released.status?.state == .queued && released.status?.leaseDeadline == t0 + 1_000)
            // Still queued (and counted), but not claimable: B comes first, then nothing.
            #expect(try await queue.depth("q") == QueueDepth(queued: 2, claimed: 0))
            #expect(try await queue.claim("q", max: 5, now: t0 + 1_000).leases.map(\.id) == [b])
            _ = try await queue.enqueue("q", QueueFixture.message(c, vt: .seconds(60), now: t0), now: t0 + 1_001)
            #expect(try await queue.claim("q", max: 5, now: t0 + 10_999).leases.map(\.id) == [c])
            #expect(try await queue.sweep(now: t0 + 10_999, limit: 10).isEmpty)
            #expect(try await queue.claim("q", max: 5, now: t0 + 10_999) == QueueClaim(leases: [], transitions: []))
            #expect(try await queue.depth("q") == QueueDepth(queued: 1, claimed: 2))
            // From the delay's end it is claimable again, without a transition.
            let after = try await queue.claim("q", max: 5, now: t0 + 11_000)
            #expect(after.transitions.isEmpty)
            #expect(after.leases.map(\.id) == [a])
            #expect(after.leases.map(\.attempts) == [2])
        }
    }

    @Test(arguments: Backend.allCases)
    func aDelayedMessageGoesBackToItsPlaceInLineWhenTheSweepReachesIt(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (a, b) = (UUID(), UUID())
            _ = try await queue.enqueue("q", QueueFixture.message(a, vt: .seconds(60), now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            #expect(try await queue.release("q", id: a, token: lease.token, delay: .seconds(5), now: t0 + 1).isOK)
            _ = try await queue.enqueue("q", QueueFixture.message(b, vt: .seconds(60), now: t0), now: t0 + 2)
            // The sweep puts A back in line (no transition to report)...
            #expect(try await queue.sweep(now: t0 + 5_001, limit: 10).isEmpty)
            #expect(try await queue.status("q", id: a)?.state == .queued)
            // ...ahead of B, which was enqueued after it.
            #expect(try await queue.claim("q", max: 2, now: t0 + 5_002).leases.map(\.id) == [a, b])
        }
    }

    @Test(arguments: Backend.allCases)
    func aDelayPastTheTTLEndsInExpiry(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(60), ttl: 5_000, now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            #expect(try await queue.release("q", id: id, token: lease.token, delay: .seconds(60), now: t0 + 1_000).isOK)
            #expect(try await queue.sweep(now: t0 + 4_999, limit: 10).isEmpty)
            #expect(try await queue.sweep(now: t0 + 5_000, limit: 10) == [QueueTransition(queue: "q", id: id, state: .expired, attempts: 1)])
            #expect(try await queue.claim("q", max: 1, now: t0 + 61_000) == QueueClaim(leases: [], transitions: []))
        }
    }

    @Test(arguments: Backend.allCases)
    func releaseOutOfAttemptsDeadLettersAtOnce(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(10), maxAttempts: 2, now: t0, attempts: 1), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            #expect(lease.attempts == 2)
            // The delay does not matter: there is no next delivery.
            let released = try await queue.release("q", id: id, token: lease.token, delay: .seconds(5), now: t0 + 100)
            let dead = QueueStatus(id: id, state: .deadLettered, attempts: 2, maxAttempts: 2, priority: .default,
                                   leaseToken: lease.token, leaseDeadline: t0 + 100)
            #expect(released == .ok(dead))
            #expect(try await queue.status("q", id: id) == dead)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
            #expect(try await queue.claim("q", max: 1, now: t0 + 20_000) == QueueClaim(leases: [], transitions: []))
            #expect(try await queue.sweep(now: t0 + 20_000, limit: 10).isEmpty)
            #expect(try await queue.release("q", id: id, token: lease.token, delay: .zero, now: t0 + 20_000) == .conflict(dead))
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: QueueOutcome(succeeded: true, result: []),
                                             now: t0 + 20_000) == .conflict(dead))
        }
    }

    @Test(arguments: Backend.allCases)
    func releaseNeedsTheCurrentTokenAndALiveLease(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (id, waiting, done) = (UUID(), UUID(), UUID())
            _ = try await queue.enqueue("q", QueueFixture.message(id, .critical, vt: .seconds(5), now: t0), now: t0)
            _ = try await queue.enqueue("q", QueueFixture.message(done, .critical, vt: .seconds(5), now: t0), now: t0)
            let leases = try await queue.claim("q", max: 2, now: t0).leases
            let lease = try #require(leases.first { $0.id == id })
            let doneLease = try #require(leases.first { $0.id == done })
            _ = try await queue.enqueue("q", QueueFixture.message(waiting, now: t0), now: t0)
            let claimed = try #require(try await queue.status("q", id: id))
            // Someone else's token, or another message's: a conflict, and the lease stays.
            #expect(try await queue.release("q", id: id, token: UUID(), delay: .zero, now: t0 + 1) == .conflict(claimed))
            #expect(try await queue.release("q", id: id, token: doneLease.token, delay: .zero, now: t0 + 1) == .conflict(claimed))
            #expect(try await queue.depth("q") == QueueDepth(queued: 1, claimed: 2))
            // A queued message has no lease to give back; an unknown one is not found.
            #expect(try await queue.release("q", id: waiting, token: lease.token, delay: .zero, now: t0 + 1).isConflict)
            #expect(try await queue.release("q", id: UUID(), token: lease.token, delay: .zero, now: t0 + 1) == .notFound)
            #expect(try await queue.release("other", id: id, token: lease.token, delay: .zero, now: t0 + 1) == .notFound)
            // A finished message: a conflict with its final status.
            let outcome = QueueOutcome(succeeded: true, result: [])
            let finished = try #require(try await queue.complete("q", id: done, token: doneLease.token, outcome: outcome, now: t0 + 2).status)
            #expect(try await queue.release("q", id: done, token: doneLease.token, delay: .zero, now: t0 + 3) == .conflict(finished))
            // At the deadline the lease has lapsed: too late to release (the lapse is reported
            // by the sweep, once).
            #expect(try await queue.release("q", id: id, token: lease.token, delay: .zero, now: t0 + 5_000) == .conflict(claimed))
            #expect(try await queue.sweep(now: t0 + 5_000, limit: 10) == [QueueTransition(queue: "q", id: id, state: .queued, attempts: 1)])
        }
    }

    @Test(arguments: Backend.allCases)
    func releaseRefusesADelayOutsideItsRange(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            // A TTL past the longest delay, so that the message is still there after it.
            _ = try await queue.enqueue("q", QueueFixture.message(id, ttl: 50_000_000, now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            for bad in [Duration.milliseconds(-1), .seconds(43_200) + .milliseconds(1), .seconds(Int64.max)] {
                await expectInvalidArgument("delay \(bad)") { _ = try await queue.release("q", id: id, token: lease.token, delay: bad, now: t0) }
            }
            await expectInvalidArgument("empty queue name") { _ = try await queue.release("", id: id, token: lease.token, delay: .zero, now: t0) }
            // Nothing changed; the longest delay is fine.
            #expect(try await queue.status("q", id: id)?.state == .claimed)
            #expect(try await queue.release("q", id: id, token: lease.token, delay: .seconds(43_200), now: t0).isOK)
            #expect(try await queue.claim("q", max: 1, now: t0 + 43_199_999).leases.isEmpty)
            #expect(try await queue.claim("q", max: 1, now: t0 + 43_200_000).leases.map(\.id) == [id])
        }
    }
}
