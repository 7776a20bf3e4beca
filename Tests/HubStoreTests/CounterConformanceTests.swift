import HubStore
import Testing

/// `CounterStore` as its doc comments define it, on every backend.
@Suite struct CounterConformanceTests {
    @Test(arguments: Backend.allCases)
    func incrementsAddAndReturnTheNewValue(_ backend: Backend) async throws {
        try await withCounters(backend) { counters async throws in
            #expect(try await counters.value("logins") == 0)
            #expect(try await counters.increment("logins", by: 1, window: .seconds(60)).value == 1)
            #expect(try await counters.increment("logins", by: 1, window: .seconds(60)).value == 2)
            #expect(try await counters.increment("logins", by: 5, window: .seconds(60)).value == 7)
            #expect(try await counters.increment("logins", by: -3, window: .seconds(60)).value == 4)
            #expect(try await counters.value("logins") == 4)
            #expect(try await counters.value("other") == 0)
            // Beyond 2^53: exact (no rounding through a double anywhere).
            let big: Int64 = (1 << 60) + 1
            #expect(try await counters.increment("big", by: big, window: .seconds(60)).value == big)
            #expect(try await counters.increment("big", by: 2, window: .seconds(60)).value == big + 2)
            #expect(try await counters.value("big") == big + 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func theWindowIsFixedByTheFirstIncrement(_ backend: Backend) async throws {
        try await withCounters(backend) { counters async throws in
            try await timingSensitive { attempt in
                let key = "ip\(attempt)"
                let started = ContinuousClock.now
                let first = try await counters.increment(key, by: 1, window: .milliseconds(700))
                try await Task.sleep(for: .milliseconds(150))
                // A later increment with a longer window does not move the expiry.
                let second = try await counters.increment(key, by: 1, window: .seconds(60))
                let elapsed = ContinuousClock.now - started
                guard elapsed < .milliseconds(600) else { return false }
                #expect(first.value == 1)
                #expect(first.resetsInMilliseconds > 550 && first.resetsInMilliseconds <= 700)
                #expect(second.value == 2)
                #expect(second.resetsInMilliseconds <= first.resetsInMilliseconds - 140)
                #expect(second.resetsInMilliseconds > 0)
                #expect(try await eventually(timeout: .seconds(3)) { try await counters.value(key) == 0 })
                return true
            }
            // A new window starts after the old one ended.
            let fresh = try await counters.increment("fresh", by: 1, window: .seconds(10))
            #expect(fresh.value == 1)
            #expect(fresh.resetsInMilliseconds > 9_000 && fresh.resetsInMilliseconds <= 10_000)
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentIncrementsAreNeverLost(_ backend: Backend) async throws {
        try await withCounters(backend) { counters async throws in
            let results = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<200 {
                    group.addTask { try await counters.increment("hits", by: 1, window: .seconds(30)).value }
                }
                var results: [Int64] = []
                for try await value in group { results.append(value) }
                return results
            }
            // Each increment saw a distinct value: together exactly 1...200.
            #expect(results.sorted() == Array(1...200))
            #expect(try await counters.value("hits") == 200)
        }
    }

    @Test(arguments: Backend.allCases)
    func resetRemovesTheCounterAndItsWindow(_ backend: Backend) async throws {
        try await withCounters(backend) { counters async throws in
            _ = try await counters.increment("attempts", by: 3, window: .milliseconds(500))
            try await counters.reset("attempts")
            #expect(try await counters.value("attempts") == 0)
            let again = try await counters.increment("attempts", by: 1, window: .seconds(20))
            #expect(again.value == 1)
            #expect(again.resetsInMilliseconds > 19_000)
            try await counters.reset("never-existed")
        }
    }

    @Test(arguments: Backend.allCases)
    func invalidInputIsRefusedAndChangesNothing(_ backend: Backend) async throws {
        try await withCounters(backend) { counters async throws in
            await expectInvalidArgument("empty key") { _ = try await counters.increment("", by: 1, window: .seconds(1)) }
            await expectInvalidArgument("long key") {
                _ = try await counters.increment(String(repeating: "k", count: StoreLimits.maxKeyBytes + 1), by: 1, window: .seconds(1))
            }
            await expectInvalidArgument("empty key value") { _ = try await counters.value("") }
            await expectInvalidArgument("empty key reset") { try await counters.reset("") }
            await expectInvalidArgument("zero window") { _ = try await counters.increment("c", by: 1, window: .zero) }
            #expect(try await counters.value("c") == 0)
            _ = try await counters.increment("c", by: Int64.max, window: .seconds(60))
            await expectInvalidArgument("overflow") { _ = try await counters.increment("c", by: 1, window: .seconds(60)) }
            #expect(try await counters.value("c") == Int64.max)
        }
    }
}
