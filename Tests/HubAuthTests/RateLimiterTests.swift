import Foundation
import HubHTTP
import HubIO
import HubRedis
import HubStore
import Synchronization
import Testing
@testable import HubAuth

/// A wall clock the test moves by hand (the limiter's window alignment reads it).
final class ManualClock: Sendable {
    private let millis: Mutex<Int64>
    init(_ start: Int64) { millis = Mutex(start) }
    var now: Int64 { millis.withLock { $0 } }
    func advance(seconds: Double) { millis.withLock { $0 += Int64(seconds * 1000) } }
    var function: @Sendable () -> Int64 { { [self] in now } }
}

/// A multiple of 60 s (and of 1 s): the start of a one-minute window.
let alignedStart: Int64 = 1_700_000_040_000

func withCounters<T>(_ backend: Backend, _ body: (any CounterStore) async throws -> T) async throws -> T {
    switch backend {
    case .embedded:
        return try await body(EmbeddedCounterStore())
    case .redisPostgres:
        return try await AuthTestEnvironment.withRedis { client, _, namespace in
            try await body(RedisCounterStore(client: client, namespace: namespace))
        }
    }
}

/// Counts the reads that reach the counter store.
final class CountingCounters: CounterStore {
    let base: any CounterStore
    let reads = Mutex(0)
    init(_ base: any CounterStore) { self.base = base }
    func increment(_ key: String, by delta: Int64, window: Duration) async throws(StoreError) -> CounterValue {
        try await base.increment(key, by: delta, window: window)
    }
    func value(_ key: String) async throws(StoreError) -> Int64 {
        reads.withLock { $0 += 1 }
        return try await base.value(key)
    }
    func reset(_ key: String) async throws(StoreError) { try await base.reset(key) }
}

/// Counts the increments that reach the counter store.
final class CountingIncrements: CounterStore {
    let base: any CounterStore
    let increments = Mutex(0)
    init(_ base: any CounterStore) { self.base = base }
    func increment(_ key: String, by delta: Int64, window: Duration) async throws(StoreError) -> CounterValue {
        increments.withLock { $0 += 1 }
        return try await base.increment(key, by: delta, window: window)
    }
    func value(_ key: String) async throws(StoreError) -> Int64 { try await base.value(key) }
    func reset(_ key: String) async throws(StoreError) { try await base.reset(key) }
}

/// Suspends inside every increment, as a Redis round trip does: checks of one loop interleave.
final class SuspendingCounters: CounterStore {
    let base = EmbeddedCounterStore()
    func increment(_ key: String, by delta: Int64, window: Duration) async throws(StoreError) -> CounterValue {
        await Task.yield()
        return try await base.increment(key, by: delta, window: window)
    }
    func value(_ key: String) async throws(StoreError) -> Int64 { try await base.value(key) }
    func reset(_ key: String) async throws(StoreError) { try await base.reset(key) }
}

/// A memory used only by tasks that prefer one event loop.
final class LoopBoundMemory: @unchecked Sendable {
    // @unchecked: every task that touches `memory` prefers the test's single loop, so it is
    // only ever used on that loop's thread (as in the server).
    let memory = RateLimitMemory()
}

@Suite struct RateLimiterTests {
    /// Requests of one loop interleave at every await, so several reservations of one key are
    /// in flight at once: every reserved event must stay usable. The store counts exactly the
    /// admitted events plus the loop's unused reservations (found by the identity benchmark:
    /// replaced leases made the store count 14x the real traffic and refused it).
    @Test func interleavedReservationsCountEveryEventOnce() async throws {
        let group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
        defer { group.stopAndJoin() }
        let loop = group.loops[0]
        let counters = SuspendingCounters()
        let clock = ManualClock(alignedStart)
        let limiter = RateLimiter(counters: counters, now: clock.function)
        let box = LoopBoundMemory()
        let rule = RateLimit(limit: 1_000_000, window: .seconds(60))
        // 200 checks at once on the one loop (as 200 requests of one device), then 2,000 more.
        let admitted = await withTaskGroup(of: Bool.self) { tasks in
            for _ in 0..<200 {
                tasks.addTask(executorPreference: loop) { (try? await limiter.check("c", rule, memory: box.memory, lease: 50).allowed) ?? false }
            }
            var n = 0
            for await ok in tasks where ok { n += 1 }
            return n
        }
        let more = try await Task(executorPreference: loop) {
            var n = 0
            for _ in 0..<2_000 where try await limiter.check("c", rule, memory: box.memory, lease: 50).allowed { n += 1 }
            return n
        }.value
        let window = alignedStart / 60_000
        let stored = try await counters.value("rl:c:\(window)")
        let leftover = await Task(executorPreference: loop) { box.memory.leftover("c", window: window) }.value
        #expect(admitted + more == 2_200)
        #expect(stored == Int64(admitted + more + leftover), "every counted event is admitted or still reserved")
    }

    /// With a loop's memory of finished windows the previous window is read once per window,
    /// and every decision is the one the limiter makes without it.
    @Test(arguments: Backend.allCases)
    func finishedWindowsAreReadOncePerWindow(_ backend: Backend) async throws {
        try await withCounters(backend) { counters in
            let counted = CountingCounters(counters)
            let clock = ManualClock(alignedStart)
            let remembering = RateLimiter(counters: counted, now: clock.function)
            let plain = RateLimiter(counters: counters, now: clock.function)
            let memory = RateLimitMemory()
            let rule = RateLimit(limit: 10, window: .seconds(60))
            // The same history on two keys: "m" through the memory, "p" without.
            for _ in 0..<8 {
                #expect(try await remembering.check("m", rule, memory: memory).allowed)
                #expect(try await plain.check("p", rule).allowed)
            }
            #expect(counted.reads.withLock { $0 } == 1)
            clock.advance(seconds: 90)
            for _ in 0..<4 {
                let withMemory = try await remembering.check("m", rule, memory: memory)
                let without = try await plain.check("p", rule)
                #expect(withMemory == without)
            }
            #expect(counted.reads.withLock { $0 } == 2, "one read for the new previous window")
        }
    }

    /// Leasing: a loop counts `lease` events per store call and admits the rest itself; the
    /// limit still holds (never more admitted than the limit in a window), one store call
    /// serves `lease` events, and a reservation that does not fit falls back to single events.
    @Test(arguments: Backend.allCases)
    func leasedEventsStayWithinTheLimit(_ backend: Backend) async throws {
        try await withCounters(backend) { counters in
            let counted = CountingIncrements(counters)
            let clock = ManualClock(alignedStart)
            let limiter = RateLimiter(counters: counted, now: clock.function)
            let memory = RateLimitMemory()
            let rule = RateLimit(limit: 1000, window: .seconds(60))
            var admitted = 0
            for _ in 0..<1200 where try await limiter.check("l", rule, memory: memory, lease: 10).allowed { admitted += 1 }
            #expect(admitted == 1000, "exactly the limit: the last reservations fall back to single events")
            // 100 reservations, one that does not fit (and its roll-back), then each refused event
            // counted exactly (an increment and its roll-back).
            let increments: Int = counted.increments.withLock { $0 }
            let bound = 1000 / 10 + 4 + 2 * 200
            #expect(increments <= bound, "one store call per 10 admitted events")
            // A second loop (its own memory) shares the same budget in the store.
            let other = RateLimitMemory()
            #expect(try await limiter.check("l", rule, memory: other, lease: 10).allowed == false)
        }
    }

    @Test(arguments: Backend.allCases)
    func slidingLimitDeniesOverTheLimitAndTheRetryAfterIsExact(_ backend: Backend) async throws {
        try await withCounters(backend) { counters in
            let clock = ManualClock(alignedStart)
            let limiter = RateLimiter(counters: counters, now: clock.function)
            for expectedRemaining in [4, 3, 2, 1, 0] {
                let decision = try await limiter.check("k", limit: 5, per: .seconds(60))
                #expect(decision == RateLimitDecision(allowed: true, remaining: expectedRemaining, retryAfterSeconds: 0))
            }
            // Previous window empty, this one full: the next event fits once this window has
            // become the previous one and decayed to 4/5 of its weight: 60 s + 12 s.
            let denied = try await limiter.check("k", limit: 5, per: .seconds(60))
            #expect(denied == RateLimitDecision(allowed: false, remaining: 0, retryAfterSeconds: 72))
            // Denied events are rolled back: knocking on does not push the retry time out.
            for _ in 0..<5 { _ = try await limiter.check("k", limit: 5, per: .seconds(60)) }
            clock.advance(seconds: 71)
            #expect(try await limiter.check("k", limit: 5, per: .seconds(60)).allowed == false)
            clock.advance(seconds: 1)
            #expect(try await limiter.check("k", limit: 5, per: .seconds(60)).allowed == true)
            // Another key has its own budget.
            #expect(try await limiter.check("other", limit: 5, per: .seconds(60)).remaining == 4)
        }
    }

    @Test(arguments: Backend.allCases)
    func slidingLimitWeightsThePreviousWindow(_ backend: Backend) async throws {
        try await withCounters(backend) { counters in
            let clock = ManualClock(alignedStart)
            let limiter = RateLimiter(counters: counters, now: clock.function)
            for _ in 0..<10 { #expect(try await limiter.check("w", limit: 10, per: .seconds(60)).allowed) }
            // Half way through the next window the previous 10 weigh 5: 5 more fit, not 10.
            clock.advance(seconds: 90)
            var allowed = 0
            for _ in 0..<10 where try await limiter.check("w", limit: 10, per: .seconds(60)).allowed { allowed += 1 }
            #expect(allowed == 5)
            // Two windows later nothing of the burst is left.
            clock.advance(seconds: 120)
            #expect(try await limiter.check("w", limit: 10, per: .seconds(60)).remaining == 9)
        }
    }

    @Test(arguments: Backend.allCases)
    func fixedLimitCountsFromTheFirstEvent(_ backend: Backend) async throws {
        try await withCounters(backend) { counters in
            let limiter = RateLimiter(counters: counters)
            let rule = RateLimit(limit: 3, window: .seconds(60), kind: .fixed)
            for remaining in [2, 1, 0] { #expect(try await limiter.check("f", rule).remaining == remaining) }
            let denied = try await limiter.check("f", rule)
            #expect(!denied.allowed)
            #expect((59...60).contains(denied.retryAfterSeconds))
        }
    }

    @Test(arguments: Backend.allCases)
    func failureCountingPeeksWithoutCounting(_ backend: Backend) async throws {
        try await withCounters(backend) { counters in
            let clock = ManualClock(alignedStart)
            let limiter = RateLimiter(counters: counters, now: clock.function)
            let rule = RateLimit.perMinute(3)
            for _ in 0..<10 { #expect(try await limiter.peek("p", rule).allowed) }  // peeking is free
            try await limiter.record("p", rule)
            try await limiter.record("p", rule)
            #expect(try await limiter.peek("p", rule) == RateLimitDecision(allowed: true, remaining: 1, retryAfterSeconds: 0))
            try await limiter.record("p", rule)
            let blocked = try await limiter.peek("p", rule)
            #expect(!blocked.allowed)
            // 3 failures in this window: one more fits when they weigh 2, a third into the next.
            #expect(blocked.retryAfterSeconds == 80)

            let fixed = RateLimit(limit: 2, window: .seconds(3600), kind: .fixed)
            try await limiter.record("c", fixed)
            #expect(try await limiter.peek("c", fixed).allowed)
            try await limiter.record("c", fixed)
            let fixedBlocked = try await limiter.peek("c", fixed)
            #expect(!fixedBlocked.allowed)
            #expect((3599...3600).contains(fixedBlocked.retryAfterSeconds))
        }
    }

    @Test func enforceThrowsTheRateLimitedProblem() async throws {
        let limiter = RateLimiter(counters: EmbeddedCounterStore(), now: ManualClock(alignedStart).function)
        try await limiter.enforce("e", .perMinute(1))
        do {
            try await limiter.enforce("e", .perMinute(1))
            Issue.record("the second request passed a limit of 1")
        } catch let problem as Problem {
            #expect(problem.status == 429)
            #expect(problem.code == "rate_limited")
            // A limit of 1: the one event must decay out completely, a whole window after this one.
            #expect(problem.retryAfterSeconds == 120)
            // Retry-After travels as a header, not in the body.
            let body = try JSONSerialization.jsonObject(with: Data(problem.jsonBytes())) as? [String: Any]
            #expect(Set(body?.keys ?? [:].keys) == ["code", "detail", "status", "title", "type"])
        }
    }

    @Test func rulesOutsideTheirRangesAreRefused() async {
        let limiter = RateLimiter(counters: EmbeddedCounterStore())
        for rule in [RateLimit(limit: 0, window: .seconds(60)), RateLimit(limit: 1, window: .milliseconds(999)),
                     RateLimit(limit: 1, window: .seconds(31 * 86_400))] {
            await #expect(throws: StoreError.self) { try await limiter.check("x", rule) }
        }
    }

    @Test func slidingWaitSolvesTheWeightedEstimate() {
        // Current window alone over: wait out this window plus the decay of its count.
        #expect(RateLimiter.slidingWait(previous: 0, current: 10, limit: 10, elapsed: 0.5, windowMs: 60_000) == 36_000)
        // Room in this window once the previous one's weight drops: 8·(1−g) + 1 ≤ 4 → g = 0.625.
        #expect(RateLimiter.slidingWait(previous: 8, current: 1, limit: 5, elapsed: 0.25, windowMs: 60_000) == 22_500)
        // Nothing counted before: no wait.
        #expect(RateLimiter.slidingWait(previous: 0, current: 3, limit: 5, elapsed: 0.1, windowMs: 60_000) == 0)
    }

    @Test func ipv6ClientsCountPerSlash64() {
        #expect(ClientAddress.rateLimitKey("203.0.113.7") == "203.0.113.7")
        #expect(ClientAddress.rateLimitKey("2001:db8:1:2::1") == ClientAddress.rateLimitKey("2001:db8:1:2:ffff:1:2:3"))
        #expect(ClientAddress.rateLimitKey("2001:db8:1:2::1") != ClientAddress.rateLimitKey("2001:db8:1:3::1"))
        #expect(ClientAddress.rateLimitKey("::ffff:203.0.113.7") == "203.0.113.7")
        #expect(ClientAddress.rateLimitKey(String(repeating: "z", count: 500)).utf8.count == 64)
    }
}
