import Foundation
import HubStore
import Testing

/// The lease queue contract (`LeaseQueue`, docs/product.md §3) on both backends: order, leases,
/// attempts, dead-lettering, TTLs, and what `extend`, `complete` and `cancel` answer.
@Suite struct LeaseQueueConformanceTests {
    @Test(arguments: Backend.allCases)
    func claimsByPriorityThenFIFO(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let plan: [(String, QueuePriority)] = [("b1", .bulk), ("d1", .default), ("c1", .critical), ("d2", .default),
                                                    ("c2", .critical), ("b2", .bulk), ("d3", .default)]
            var ids: [String: UUID] = [:]
            for (offset, (name, priority)) in plan.enumerated() {
                let id = UUID()
                ids[name] = id
                #expect(try await queue.enqueue("q", QueueFixture.message(id, priority, now: t0), now: t0 + StoreMillis(offset)))
            }
            let first = try await queue.claim("q", max: 3, now: t0 + 10)
            let rest = try await queue.claim("q", max: 10, now: t0 + 10)
            let order = (first.leases + rest.leases).map(\.id)
            #expect(order == ["c1", "c2", "d1", "d2", "d3", "b1", "b2"].compactMap { ids[$0] })
            #expect((first.leases + rest.leases).map(\.priority) == [.critical, .critical, .default, .default, .default, .bulk, .bulk])
            #expect(first.transitions.isEmpty && rest.transitions.isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func claimLeasesAtMostMaxWithFreshTokensAndDeadlines(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            #expect(try await queue.claim("empty", max: 5, now: t0) == QueueClaim(leases: [], transitions: []))
            for i in 0..<5 {
                _ = try await queue.enqueue("q", QueueFixture.message(payload: [UInt8(i)], vt: .seconds(7), now: t0), now: t0)
            }
            let claim = try await queue.claim("q", max: 2, now: t0 + 100)
            #expect(claim.leases.count == 2)
            #expect(claim.leases.map(\.payload) == [[0], [1]])
            #expect(claim.leases.allSatisfy { $0.attempts == 1 && $0.deadline == t0 + 100 + 7_000 })
            #expect(Set(claim.leases.map(\.token)).count == 2)
            #expect(try await queue.depth("q") == QueueDepth(queued: 3, claimed: 2))
            let status = try #require(try await queue.status("q", id: claim.leases[0].id))
            #expect(status.state == .claimed && status.attempts == 1)
            #expect(status.leaseToken == claim.leases[0].token && status.leaseDeadline == t0 + 7_100)
            for bad in [0, -1, StoreLimits.maxBatch + 1] {
                await #expect(throws: StoreError.self) { _ = try await queue.claim("q", max: bad, now: t0) }
            }
            #expect(try await queue.depth("q") == QueueDepth(queued: 3, claimed: 2))
        }
    }

    @Test(arguments: Backend.allCases)
    func lapsedLeaseGoesBackToItsOriginalPlace(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (a, b, c) = (UUID(), UUID(), UUID())
            for id in [a, b] { _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(5), now: t0), now: t0) }
            let first = try await queue.claim("q", max: 1, now: t0)
            #expect(first.leases.map(\.id) == [a])
            _ = try await queue.enqueue("q", QueueFixture.message(c, vt: .seconds(5), now: t0), now: t0 + 1)
            // Still live one millisecond before the deadline: nothing is due.
            #expect(try await queue.sweep(now: t0 + 4_999, limit: 10).isEmpty)
            // At the deadline the lease has lapsed: A is reported back in line...
            let lapsed = try await queue.claim("q", max: 2, now: t0 + 5_000)
            #expect(lapsed.transitions == [QueueTransition(queue: "q", id: a, state: .queued, attempts: 1)])
            // ...and is delivered again ahead of B and C, enqueued after it.
            #expect(lapsed.leases.map(\.id) == [a, b])
            #expect(lapsed.leases.map(\.attempts) == [2, 1])
            #expect(lapsed.leases[0].token != first.leases[0].token)
            let stale = try await queue.complete("q", id: a, token: first.leases[0].token,
                                                 outcome: QueueOutcome(succeeded: true, result: []), now: t0 + 5_001)
            #expect(stale.isConflict && stale.status?.state == .claimed && stale.status?.leaseToken == lapsed.leases[0].token)
        }
    }

    @Test(arguments: Backend.allCases)
    func sweepRequeuesALapsedLeaseAsQueued(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(2), now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            #expect(try await queue.sweep(now: t0 + 2_000, limit: 10) == [QueueTransition(queue: "q", id: id, state: .queued, attempts: 1)])
            let status = try #require(try await queue.status("q", id: id))
            #expect(status.state == .queued && status.attempts == 1 && status.leaseToken == lease.token)
            #expect(try await queue.depth("q") == QueueDepth(queued: 1, claimed: 0))
            #expect(try await queue.sweep(now: t0 + 2_000, limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func deadLettersAfterMaxAttempts(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(1), maxAttempts: 2, now: t0), now: t0)
            #expect(try await queue.claim("q", max: 1, now: t0).leases.map(\.attempts) == [1])
            let second = try await queue.claim("q", max: 1, now: t0 + 1_000)
            #expect(second.transitions == [QueueTransition(queue: "q", id: id, state: .queued, attempts: 1)])
            #expect(second.leases.map(\.attempts) == [2])
            let third = try await queue.claim("q", max: 1, now: t0 + 2_000)
            #expect(third.transitions == [QueueTransition(queue: "q", id: id, state: .deadLettered, attempts: 2)])
            #expect(third.leases.isEmpty)
            let status = try #require(try await queue.status("q", id: id))
            #expect(status.state == .deadLettered && status.state.isTerminal && status.attempts == 2)
            #expect(try await queue.claim("q", max: 1, now: t0 + 3_000) == QueueClaim(leases: [], transitions: []))
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
        }
    }

    @Test(arguments: Backend.allCases)
    func ttlExpiresQueuedAndClaimedMessages(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (waiting, running) = (UUID(), UUID())
            _ = try await queue.enqueue("q", QueueFixture.message(running, .critical, ttl: 2_000, now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            _ = try await queue.enqueue("q", QueueFixture.message(waiting, ttl: 500, now: t0), now: t0)
            // A queued message past its TTL is expired before anything is leased.
            let claim = try await queue.claim("q", max: 5, now: t0 + 500)
            #expect(claim.transitions == [QueueTransition(queue: "q", id: waiting, state: .expired, attempts: 0)])
            #expect(claim.leases.isEmpty)
            // A claimed message's lease is not live past its TTL, even before the deadline...
            let late = try await queue.complete("q", id: running, token: lease.token, outcome: QueueOutcome(succeeded: true, result: []), now: t0 + 2_000)
            #expect(late.isConflict && late.status?.state == .claimed)
            #expect(try await queue.extend("q", id: running, token: lease.token, by: .seconds(10), now: t0 + 2_000).isConflict)
            // ...and the sweep ends it as expired.
            #expect(try await queue.sweep(now: t0 + 2_000, limit: 10) == [QueueTransition(queue: "q", id: running, state: .expired, attempts: 1)])
            #expect(try await queue.status("q", id: running)?.state == .expired)
            #expect(try await queue.status("q", id: waiting)?.state == .expired)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
        }
    }

    @Test(arguments: Backend.allCases)
    func extendNeedsTheCurrentTokenAndALiveLease(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(10), now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            let extended = try await queue.extend("q", id: id, token: lease.token, by: .seconds(30), now: t0 + 5_000)
            #expect(extended.isOK && extended.status?.leaseDeadline == t0 + 35_000 && extended.status?.state == .claimed)
            // Shorter is allowed too: the deadline is now + by.
            #expect(try await queue.extend("q", id: id, token: lease.token, by: .seconds(1), now: t0 + 6_000).status?.leaseDeadline == t0 + 7_000)
            let foreign = try await queue.extend("q", id: id, token: UUID(), by: .seconds(30), now: t0 + 6_000)
            #expect(foreign.isConflict && foreign.status?.leaseDeadline == t0 + 7_000)
            #expect(try await queue.extend("q", id: UUID(), token: lease.token, by: .seconds(1), now: t0) == .notFound)
            await #expect(throws: StoreError.self) { _ = try await queue.extend("q", id: id, token: lease.token, by: .zero, now: t0) }
            await #expect(throws: StoreError.self) { _ = try await queue.extend("q", id: id, token: lease.token, by: .seconds(43_201), now: t0) }
            // At the deadline the lease has lapsed: too late to extend.
            let lapsed = try await queue.extend("q", id: id, token: lease.token, by: .seconds(30), now: t0 + 7_000)
            #expect(lapsed.isConflict && lapsed.status?.leaseDeadline == t0 + 7_000)
            // Redelivered: the old token is stale, the new one works.
            let again = try #require(try await queue.claim("q", max: 1, now: t0 + 7_000).leases.first)
            #expect(try await queue.extend("q", id: id, token: lease.token, by: .seconds(30), now: t0 + 7_001).isConflict)
            #expect(try await queue.extend("q", id: id, token: again.token, by: .seconds(30), now: t0 + 7_001).status?.leaseDeadline == t0 + 37_001)
        }
    }

    @Test(arguments: Backend.allCases)
    func extendIsCappedAtMaxLeaseTotal(_ backend: Backend) async throws {
        try await withLeaseQueue(backend, options: QueueFixture.options(maxLeaseTotal: .seconds(20))) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(10), now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0 + 1_000).leases.first)
            #expect(lease.deadline == t0 + 11_000)
            // leasedAt + 20 s, not now + 60 s.
            let capped = try await queue.extend("q", id: id, token: lease.token, by: .seconds(60), now: t0 + 2_000)
            #expect(capped.isOK && capped.status?.leaseDeadline == t0 + 21_000)
            #expect(try await queue.extend("q", id: id, token: lease.token, by: .seconds(5), now: t0 + 19_000).status?.leaseDeadline == t0 + 21_000)
            #expect(try await queue.extend("q", id: id, token: lease.token, by: .seconds(1), now: t0 + 19_000).status?.leaseDeadline == t0 + 20_000)
            // A visibility timeout over the cap is capped at claim time too.
            let long = UUID()
            _ = try await queue.enqueue("long", QueueFixture.message(long, vt: .seconds(60), now: t0), now: t0)
            #expect(try await queue.claim("long", max: 1, now: t0).leases.first?.deadline == t0 + 20_000)
        }
    }

    @Test(arguments: Backend.allCases)
    func completeRecordsTheOutcomeOnceAndAnswersRepeats(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (id, other) = (UUID(), UUID())
            for m in [id, other] { _ = try await queue.enqueue("q", QueueFixture.message(m, now: t0), now: t0) }
            let leases = try await queue.claim("q", max: 2, now: t0).leases
            let (lease, otherLease) = (leases[0], leases[1])
            let outcome = QueueOutcome(succeeded: true, result: Array("exit 0".utf8))
            let done = try await queue.complete("q", id: id, token: lease.token, outcome: outcome, now: t0 + 10)
            guard case .ok(let status) = done else { Issue.record("complete answered \(done)"); return }
            #expect(status.state == .succeeded && status.outcome == outcome && status.attempts == 1 && status.leaseToken == lease.token)
            #expect(try await queue.status("q", id: id) == status)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 1))
            // The same token and outcome again: already done, nothing changes.
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: outcome, now: t0 + 20) == .alreadyDone(status))
            // A different outcome, a different result, or someone else's token: conflict with the truth.
            let failed = QueueOutcome(succeeded: false, result: Array("exit 0".utf8))
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: failed, now: t0 + 20) == .conflict(status))
            let otherResult = QueueOutcome(succeeded: true, result: Array("exit 1".utf8))
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: otherResult, now: t0 + 20) == .conflict(status))
            #expect(try await queue.complete("q", id: id, token: otherLease.token, outcome: outcome, now: t0 + 20) == .conflict(status))
            #expect(try await queue.complete("q", id: UUID(), token: lease.token, outcome: outcome, now: t0 + 20) == .notFound)
            // A failure is recorded as such.
            let failure = QueueOutcome(succeeded: false, result: Array("exit 2".utf8))
            let otherDone = try await queue.complete("q", id: other, token: otherLease.token, outcome: failure, now: t0 + 30)
            #expect(otherDone.isOK && otherDone.status?.state == .failed && otherDone.status?.outcome == failure)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
            await #expect(throws: StoreError.self) {
                _ = try await queue.complete("q", id: id, token: lease.token,
                                             outcome: QueueOutcome(succeeded: true, result: [UInt8](repeating: 1, count: StoreLimits.maxValueBytes + 1)), now: t0)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func completeAfterTheLeaseLapsedIsAConflict(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(1), now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            let outcome = QueueOutcome(succeeded: true, result: [])
            let late = try await queue.complete("q", id: id, token: lease.token, outcome: outcome, now: t0 + 1_000)
            #expect(late == .conflict(QueueStatus(id: id, state: .claimed, attempts: 1, maxAttempts: 3, priority: .default,
                                                  leaseToken: lease.token, leaseDeadline: t0 + 1_000)))
            // Redelivered: the first lease stays stale, the second one completes.
            let again = try #require(try await queue.claim("q", max: 1, now: t0 + 1_000).leases.first)
            #expect(try await queue.complete("q", id: id, token: lease.token, outcome: outcome, now: t0 + 1_001).isConflict)
            #expect(try await queue.complete("q", id: id, token: again.token, outcome: outcome, now: t0 + 1_001).status?.state == .succeeded)
        }
    }

    @Test(arguments: Backend.allCases)
    func cancelEndsQueuedAndClaimedMessages(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (waiting, running) = (UUID(), UUID())
            _ = try await queue.enqueue("q", QueueFixture.message(running, .critical, now: t0), now: t0)
            let lease = try #require(try await queue.claim("q", max: 1, now: t0).leases.first)
            _ = try await queue.enqueue("q", QueueFixture.message(waiting, now: t0), now: t0)
            let canceledQueued = try await queue.cancel("q", id: waiting, now: t0 + 1)
            #expect(canceledQueued.isOK && canceledQueued.status?.state == .canceled && canceledQueued.status?.attempts == 0)
            let canceledClaimed = try await queue.cancel("q", id: running, now: t0 + 2)
            #expect(canceledClaimed.isOK && canceledClaimed.status?.state == .canceled && canceledClaimed.status?.leaseToken == lease.token)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
            #expect(try await queue.claim("q", max: 5, now: t0 + 3).leases.isEmpty)
            // The outstanding lease is stale now.
            let outcome = QueueOutcome(succeeded: true, result: [])
            #expect(try await queue.complete("q", id: running, token: lease.token, outcome: outcome, now: t0 + 3).status?.state == .canceled)
            #expect(try await queue.complete("q", id: running, token: lease.token, outcome: outcome, now: t0 + 3).isConflict)
            #expect(try await queue.extend("q", id: running, token: lease.token, by: .seconds(5), now: t0 + 3).isConflict)
            // Terminal already: a conflict; unknown: not found.
            #expect(try await queue.cancel("q", id: running, now: t0 + 4).isConflict)
            #expect(try await queue.cancel("q", id: UUID(), now: t0 + 4) == .notFound)
            #expect(try await queue.sweep(now: t0 + 3_600_000, limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func enqueueIsIdempotentByIdInAnyState(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            #expect(try await queue.enqueue("q", QueueFixture.message(id, payload: [1], now: t0), now: t0))
            #expect(try await queue.enqueue("q", QueueFixture.message(id, .critical, payload: [2], now: t0), now: t0) == false)
            #expect(try await queue.depth("q") == QueueDepth(queued: 1, claimed: 0))
            let lease = try #require(try await queue.claim("q", max: 5, now: t0).leases.first)
            #expect(lease.payload == [1] && lease.priority == .default)
            #expect(try await queue.enqueue("q", QueueFixture.message(id, now: t0), now: t0 + 1) == false)
            let done = try await queue.complete("q", id: id, token: lease.token, outcome: QueueOutcome(succeeded: true, result: []), now: t0 + 2)
            #expect(try await queue.enqueue("q", QueueFixture.message(id, now: t0), now: t0 + 3) == false)
            #expect(try await queue.status("q", id: id) == done.status)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
            // The same id in another queue is another message.
            #expect(try await queue.enqueue("other", QueueFixture.message(id, now: t0), now: t0))
        }
    }

    @Test(arguments: Backend.allCases)
    func enqueueWithPresetAttemptsContinuesTheCount(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            #expect(try await queue.enqueue("q", QueueFixture.message(id, vt: .seconds(1), maxAttempts: 3, now: t0, attempts: 2), now: t0))
            #expect(try await queue.status("q", id: id)?.attempts == 2)
            #expect(try await queue.claim("q", max: 1, now: t0).leases.map(\.attempts) == [3])
            #expect(try await queue.sweep(now: t0 + 1_000, limit: 10) == [QueueTransition(queue: "q", id: id, state: .deadLettered, attempts: 3)])
        }
    }

    @Test(arguments: Backend.allCases)
    func statusAndDepthOfUnknownThings(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            #expect(try await queue.status("nothing", id: UUID()) == nil)
            #expect(try await queue.depth("nothing") == QueueDepth(queued: 0, claimed: 0))
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, .bulk, maxAttempts: 7, now: t0), now: t0)
            #expect(try await queue.status("q", id: id) == QueueStatus(id: id, state: .queued, attempts: 0, maxAttempts: 7, priority: .bulk))
            #expect(try await queue.status("q", id: UUID()) == nil)
            #expect(try await queue.status("other", id: id) == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func invalidInputIsRefusedAndNothingIsEnqueued(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            let bad: [QueueMessage] = [
                QueueFixture.message(id, maxAttempts: 0, now: t0),
                QueueFixture.message(id, maxAttempts: 101, now: t0),
                QueueFixture.message(id, vt: .zero, now: t0),
                QueueFixture.message(id, vt: .milliseconds(999), now: t0),
                QueueFixture.message(id, vt: .seconds(43_201), now: t0),
                QueueFixture.message(id, maxAttempts: 2, now: t0, attempts: 2),
                QueueFixture.message(id, maxAttempts: 2, now: t0, attempts: -1),
                QueueFixture.message(id, payload: [UInt8](repeating: 7, count: StoreLimits.maxValueBytes + 1), now: t0),
            ]
            for message in bad {
                await #expect(throws: StoreError.self) { _ = try await queue.enqueue("q", message, now: t0) }
            }
            for name in ["", String(repeating: "x", count: StoreLimits.maxKeyBytes + 1)] {
                await #expect(throws: StoreError.self) { _ = try await queue.enqueue(name, QueueFixture.message(id, now: t0), now: t0) }
                await #expect(throws: StoreError.self) { _ = try await queue.claim(name, max: 1, now: t0) }
                await #expect(throws: StoreError.self) { _ = try await queue.status(name, id: id) }
            }
            for limit in [0, StoreLimits.maxBatch + 1] {
                await #expect(throws: StoreError.self) { _ = try await queue.sweep(now: t0, limit: limit) }
            }
            do {
                _ = try await queue.enqueue("q", QueueFixture.message(id, maxAttempts: 0, now: t0), now: t0)
                Issue.record("maxAttempts 0 was accepted")
            } catch let error as StoreError {
                if case .invalidArgument = error {} else { Issue.record("expected invalidArgument, got \(error)") }
            }
            #expect(try await queue.status("q", id: id) == nil)
            #expect(try await queue.depth("q") == QueueDepth(queued: 0, claimed: 0))
            // The limits themselves are accepted.
            let edge = QueueFixture.message(id, payload: [UInt8](repeating: 7, count: StoreLimits.maxValueBytes), vt: .seconds(43_200),
                                            maxAttempts: 100, now: t0, attempts: 99)
            #expect(try await queue.enqueue(String(repeating: "x", count: StoreLimits.maxKeyBytes), edge, now: t0))
        }
    }

    @Test(arguments: Backend.allCases)
    func queueNamesMayHoldAnyCharacters(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            // Including names built to look like another queue's key suffix.
            let names = ["with space", "a:b:c", "a", "1:a", "quote\"'`", "ünïcødé 🚀", "m:", "ready", "a:ready", "\u{7f}\t\n"]
            var ids: [String: UUID] = [:]
            for name in names {
                let id = UUID()
                ids[name] = id
                #expect(try await queue.enqueue(name, QueueFixture.message(id, payload: Array(name.utf8), vt: .seconds(1), now: t0), now: t0))
            }
            for name in names {
                #expect(try await queue.depth(name) == QueueDepth(queued: 1, claimed: 0))
                let claim = try await queue.claim(name, max: 5, now: t0)
                #expect(claim.leases.map(\.id) == [ids[name]].compactMap { $0 })
                #expect(claim.leases.first?.payload == Array(name.utf8))
            }
            let swept = try await queue.sweep(now: t0 + 1_000, limit: 100)
            #expect(Set(swept.map { "\($0.queue)|\($0.id)" }) == Set(names.compactMap { name in ids[name].map { "\(name)|\($0)" } }))
            #expect(swept.allSatisfy { $0.state == .queued && $0.attempts == 1 })
            for name in names {
                #expect(try await queue.status(name, id: ids[name] ?? UUID())?.state == .queued)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func binaryPayloadsAndResultsRoundTrip(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let bytes = (0...255).map { UInt8($0) } + [0, 0, 0xff, 0]
            let id = UUID()
            _ = try await queue.enqueue("q", QueueFixture.message(id, payload: bytes, now: t0), now: t0)
            _ = try await queue.enqueue("q", QueueFixture.message(payload: [], now: t0), now: t0)
            let leases = try await queue.claim("q", max: 2, now: t0).leases
            #expect(leases.map(\.payload) == [bytes, []])
            let outcome = QueueOutcome(succeeded: false, result: bytes.reversed())
            #expect(try await queue.complete("q", id: id, token: leases[0].token, outcome: outcome, now: t0).isOK)
            #expect(try await queue.status("q", id: id)?.outcome == outcome)
            #expect(try await queue.complete("q", id: id, token: leases[0].token, outcome: outcome, now: t0).status?.outcome == outcome)
        }
    }
}
