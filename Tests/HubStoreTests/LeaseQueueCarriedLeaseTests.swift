import Foundation
import HubStore
import Testing

/// `enqueue` with a lease (`QueueMessage.lease`): how a rebuilt queue keeps a delivery that was
/// in progress when the queue was lost. On both backends.
@Suite struct LeaseQueueCarriedLeaseTests {
    @Test(arguments: Backend.allCases)
    func aCarriedLeaseIsHeldUntilItsDeadlineThenLapsesAsAnyOther(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let (held, waiting) = (UUID(), UUID())
            let token = UUID()
            var message = QueueFixture.message(held, vt: .seconds(30), now: t0)
            message.attempts = 1
            message.lease = QueueMessage.Lease(token: token, deadline: t0 + 5_000, leasedAt: t0 - 1_000)
            #expect(try await queue.enqueue("q", message, now: t0))
            _ = try await queue.enqueue("q", QueueFixture.message(waiting, vt: .seconds(30), now: t0), now: t0)
            let status = try #require(try await queue.status("q", id: held))
            #expect(status.state == .claimed)
            #expect(status.leaseToken == token)
            #expect(status.leaseDeadline == t0 + 5_000)
            #expect(status.attempts == 1)
            #expect(try await queue.depth("q") == QueueDepth(queued: 1, claimed: 1))

            // Not handed out again while the lease lives; its holder extends it (capped by leasedAt).
            #expect(try await queue.claim("q", max: 5, now: t0 + 10).leases.map(\.id) == [waiting])
            #expect(try await queue.extend("q", id: held, token: token, by: .seconds(2), now: t0 + 4_000).status?.leaseDeadline == t0 + 6_000)

            // At the deadline it goes back in line and is delivered as attempt 2.
            let after = try await queue.claim("q", max: 5, now: t0 + 6_001)
            #expect(after.transitions == [QueueTransition(queue: "q", id: held, state: .queued, attempts: 1)])
            #expect(after.leases.map(\.id) == [held])
            #expect(after.leases.first?.attempts == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func theHolderCompletesACarriedLease(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID(), token = UUID()
            var message = QueueFixture.message(id, vt: .seconds(30), now: t0)
            message.attempts = 3
            message.maxAttempts = 3
            message.lease = QueueMessage.Lease(token: token, deadline: t0 + 5_000, leasedAt: t0)
            #expect(try await queue.enqueue("q", message, now: t0))
            let outcome = QueueOutcome(succeeded: true, result: Array("ok".utf8))
            #expect(try await queue.complete("q", id: id, token: UUID(), outcome: outcome, now: t0 + 1).isConflict)
            #expect(try await queue.complete("q", id: id, token: token, outcome: outcome, now: t0 + 1).status?.state == .succeeded)
        }
    }

    @Test(arguments: Backend.allCases)
    func aCarriedLeaseOnTheLastAttemptDeadLettersWhenItLapses(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            let id = UUID()
            var message = QueueFixture.message(id, vt: .seconds(30), now: t0)
            message.attempts = 3
            message.maxAttempts = 3
            message.lease = QueueMessage.Lease(token: UUID(), deadline: t0 + 1_000, leasedAt: t0)
            #expect(try await queue.enqueue("q", message, now: t0))
            #expect(try await queue.sweep(now: t0 + 1_001, limit: 10) == [QueueTransition(queue: "q", id: id, state: .deadLettered, attempts: 3)])
        }
    }

    @Test(arguments: Backend.allCases)
    func attemptsOfALeasedMessageCountTheDelivery(_ backend: Backend) async throws {
        try await withLeaseQueue(backend) { queue throws in
            let t0 = StoreMillis.now()
            var message = QueueFixture.message(UUID(), vt: .seconds(30), now: t0)
            message.lease = QueueMessage.Lease(token: UUID(), deadline: t0 + 1_000, leasedAt: t0)
            message.attempts = 0
            await #expect(throws: StoreError.self) { _ = try await queue.enqueue("q", message, now: t0) }
            message.attempts = 4
            await #expect(throws: StoreError.self) { _ = try await queue.enqueue("q", message, now: t0) }
        }
    }
}
