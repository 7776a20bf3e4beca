import HubStore
import Testing

/// `KeyValueStore` as its doc comments define it, on every backend.
@Suite struct KeyValueConformanceTests {
    @Test(arguments: Backend.allCases)
    func roundTripsArbitraryBytes(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            #expect(try await kv.get("missing") == nil)
            try await kv.set("all", allByteValues, ttl: nil)
            try await kv.set("nul", bytesWithNULs, ttl: nil)
            try await kv.set("empty", [], ttl: nil)
            #expect(try await kv.get("all") == allByteValues)
            #expect(try await kv.get("nul") == bytesWithNULs)
            // An empty value exists: it is not the same as a missing key.
            #expect(try await kv.get("empty") == [])
            #expect(try await kv.timeToLive("empty") == .never)
            try await kv.set("all", [1, 2, 3], ttl: nil)
            #expect(try await kv.get("all") == [1, 2, 3])
        }
    }

    @Test(arguments: Backend.allCases)
    func valueSizeLimitIsExactAndWritesNothingOver(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            var largest = [UInt8](repeating: 0xab, count: StoreLimits.maxValueBytes)
            largest[0] = 0
            largest[largest.count - 1] = 0xff
            try await kv.set("largest", largest, ttl: nil)
            #expect(try await kv.get("largest") == largest)

            let tooLarge = [UInt8](repeating: 1, count: StoreLimits.maxValueBytes + 1)
            await expectInvalidArgument("set over the limit") { try await kv.set("big", tooLarge, ttl: nil) }
            await expectInvalidArgument("setIfAbsent over the limit") { _ = try await kv.setIfAbsent("big", tooLarge, ttl: nil) }
            await expectInvalidArgument("replacing with a value over the limit") { try await kv.set("largest", tooLarge, ttl: nil) }
            #expect(try await kv.get("big") == nil)
            #expect(try await kv.get("largest") == largest)
        }
    }

    @Test(arguments: Backend.allCases)
    func keysMustBeNonEmptyAndWithinTheLimit(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            let longest = String(repeating: "é", count: StoreLimits.maxKeyBytes / 2)   // 2 UTF-8 bytes each
            #expect(longest.utf8.count == StoreLimits.maxKeyBytes)
            try await kv.set(longest, [1], ttl: nil)
            #expect(try await kv.get(longest) == [1])

            for bad in ["", longest + "x"] {
                await expectInvalidArgument("get") { _ = try await kv.get(bad) }
                await expectInvalidArgument("get refreshing") { _ = try await kv.get(bad, refreshingTTL: .seconds(1)) }
                await expectInvalidArgument("set") { try await kv.set(bad, [1], ttl: nil) }
                await expectInvalidArgument("setIfAbsent") { _ = try await kv.setIfAbsent(bad, [1], ttl: nil) }
                await expectInvalidArgument("delete") { try await kv.delete([bad]) }
                await expectInvalidArgument("timeToLive") { _ = try await kv.timeToLive(bad) }
            }
            // One bad key refuses the whole delete: the good key is still there.
            await expectInvalidArgument("delete with one bad key") { try await kv.delete([longest, ""]) }
            #expect(try await kv.get(longest) == [1])
        }
    }

    @Test(arguments: Backend.allCases)
    func ttlsMustBeAtLeastOneMillisecond(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            await expectInvalidArgument("zero ttl") { try await kv.set("k", [1], ttl: .zero) }
            await expectInvalidArgument("negative ttl") { _ = try await kv.setIfAbsent("k", [1], ttl: .milliseconds(-5)) }
            await expectInvalidArgument("sub-millisecond ttl") { try await kv.set("k", [1], ttl: .microseconds(500)) }
            await expectInvalidArgument("absurd ttl") { try await kv.set("k", [1], ttl: .seconds(Int64.max)) }
            #expect(try await kv.get("k") == nil)
            try await kv.set("k", [1], ttl: nil)
            await expectInvalidArgument("zero refresh") { _ = try await kv.get("k", refreshingTTL: .zero) }
            #expect(try await kv.timeToLive("k") == .never)
        }
    }

    @Test(arguments: Backend.allCases)
    func keysWithAwkwardCharactersAreDistinct(_ backend: Backend) async throws {
        let keys = ["with space", "quote\"s and 'single'", "new\nline", "carriage\r\nreturn", "star*", "glob?[ab]",
                    "{brace}", "{brace}x", "ünïcødé 🚀", "nul\u{0}inside", "colon:sep:", "\\backslash"]
        try await withKeyValue(backend) { kv async throws in
            for (i, key) in keys.enumerated() { try await kv.set(key, [UInt8(i)], ttl: nil) }
            for (i, key) in keys.enumerated() { #expect(try await kv.get(key) == [UInt8(i)], "key \(key.debugDescription)") }
            // A glob-like key deletes only itself.
            #expect(try await kv.delete(["star*"]) == 1)
            #expect(try await kv.get("star*") == nil)
            #expect(try await kv.get("glob?[ab]") == [5])
            #expect(try await kv.get("{brace}x") == [7])
        }
    }

    @Test(arguments: Backend.allCases)
    func valuesExpireAfterTheirTTL(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            try await kv.set("long", [2], ttl: nil)
            var short = ""
            try await timingSensitive { attempt in
                short = "short\(attempt)"
                let started = ContinuousClock.now
                try await kv.set(short, [1], ttl: .milliseconds(150))
                let value = try await kv.get(short)
                let left = try await kv.timeToLive(short)
                guard ContinuousClock.now - started < .milliseconds(140) else { return false }
                #expect(value == [1])
                guard case .after(let ms)? = left else {
                    Issue.record("expected a TTL, got \(String(describing: left))")
                    return true
                }
                #expect(ms > 0 && ms <= 150)
                return true
            }
            #expect(try await eventually(timeout: .seconds(3)) { try await kv.get(short) == nil })
            #expect(try await kv.timeToLive(short) == nil)
            #expect(try await kv.get("long") == [2])
            // An expired key is absent: setIfAbsent takes it, delete does not count it.
            try await kv.set("gone", [3], ttl: .milliseconds(100))
            #expect(try await eventually(timeout: .seconds(3)) { try await kv.timeToLive("gone") == nil })
            #expect(try await kv.delete(["gone"]) == 0)
            #expect(try await kv.setIfAbsent(short, [4], ttl: nil))
            #expect(try await kv.get(short) == [4])
        }
    }

    @Test(arguments: Backend.allCases)
    func getRefreshingTTLSlidesTheExpiry(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            let ttl = Duration.milliseconds(300)
            try await timingSensitive { attempt in
                let key = "session\(attempt)"
                var previousStart = ContinuousClock.now
                try await kv.set(key, [7], ttl: ttl)
                let started = ContinuousClock.now
                // Refreshed every 100 ms for 600 ms (twice the TTL): still alive, provided no
                // two consecutive calls were more than a TTL apart.
                var values: [[UInt8]?] = []
                while ContinuousClock.now - started < .milliseconds(600) {
                    try await Task.sleep(for: .milliseconds(100))
                    let callStart = ContinuousClock.now
                    values.append(try await kv.get(key, refreshingTTL: ttl))
                    guard ContinuousClock.now - previousStart < .milliseconds(280) else { return false }
                    previousStart = callStart
                }
                let left = try await kv.timeToLive(key)
                guard ContinuousClock.now - previousStart < .milliseconds(140) else { return false }
                #expect(values.allSatisfy { $0 == [7] })
                guard case .after(let ms)? = left else {
                    Issue.record("expected a TTL on the session, got \(String(describing: left))")
                    return true
                }
                #expect(ms > 150 && ms <= 300)
                // Plain get does not refresh: it expires.
                #expect(try await eventually(timeout: .seconds(3)) { try await kv.get(key) == nil })
                return true
            }

            // Refreshing a missing key neither creates it nor fails.
            #expect(try await kv.get("nobody", refreshingTTL: ttl) == nil)
            #expect(try await kv.timeToLive("nobody") == nil)
            // Refreshing a key without expiry gives it one.
            try await kv.set("forever", [1], ttl: nil)
            #expect(try await kv.get("forever", refreshingTTL: .seconds(10)) == [1])
            guard case .after(let left)? = try await kv.timeToLive("forever") else {
                Issue.record("refresh did not set an expiry")
                return
            }
            #expect(left > 9_000 && left <= 10_000)
        }
    }

    @Test(arguments: Backend.allCases)
    func setIfAbsentHasExactlyOneWinner(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            let winners = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for i in 0..<20 {
                    group.addTask { (i, try await kv.setIfAbsent("lock", [UInt8(i)], ttl: .seconds(10))) }
                }
                var winners: [Int] = []
                for try await (i, won) in group where won { winners.append(i) }
                return winners
            }
            #expect(winners.count == 1)
            if let winner = winners.first { #expect(try await kv.get("lock") == [UInt8(winner)]) }
            #expect(try await kv.setIfAbsent("lock", [99], ttl: nil) == false)
            guard case .after(let ms)? = try await kv.timeToLive("lock") else {
                Issue.record("setIfAbsent did not set its ttl")
                return
            }
            #expect(ms > 9_000 && ms <= 10_000)
        }
    }

    @Test(arguments: Backend.allCases)
    func deleteCountsTheKeysThatExisted(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            try await kv.set("a", [1], ttl: nil)
            try await kv.set("b", [2], ttl: .seconds(10))
            #expect(try await kv.delete([]) == 0)
            #expect(try await kv.delete(["a", "b", "c"]) == 2)
            #expect(try await kv.get("a") == nil)
            #expect(try await kv.get("b") == nil)
            #expect(try await kv.delete(["a"]) == 0)
        }
    }

    @Test(arguments: Backend.allCases)
    func timeToLiveReportsEachCase(_ backend: Backend) async throws {
        try await withKeyValue(backend) { kv async throws in
            #expect(try await kv.timeToLive("missing") == nil)
            try await kv.set("k", [1], ttl: nil)
            #expect(try await kv.timeToLive("k") == .never)
            try await kv.set("k", [1], ttl: .seconds(10))
            guard case .after(let ms)? = try await kv.timeToLive("k") else {
                Issue.record("expected a TTL")
                return
            }
            #expect(ms > 9_000 && ms <= 10_000)
            // `set` replaces the expiry too: without a ttl the key no longer expires.
            try await kv.set("k", [2], ttl: nil)
            #expect(try await kv.timeToLive("k") == .never)
            // setIfAbsent on an existing key changes nothing, expiry included.
            #expect(try await kv.setIfAbsent("k", [3], ttl: .seconds(1)) == false)
            #expect(try await kv.timeToLive("k") == .never)
            #expect(try await kv.get("k") == [2])
        }
    }
}
