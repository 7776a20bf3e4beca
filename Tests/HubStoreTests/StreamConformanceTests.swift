import HubStore
import Testing

/// `StreamStore` as its doc comments define it, on every backend; `recovered` at each edge.
@Suite struct StreamConformanceTests {
    private func payload(_ n: Int) -> [UInt8] { Array("entry \(n)".utf8) }

    @Test(arguments: Backend.allCases)
    func offsetsStartAtOneAndCount(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            for n in 1...3 { #expect(try await streams.append("room", payload(n), maxLength: 100, ttl: nil).offset == UInt64(n)) }
            let read = try await streams.read("room", after: 0, limit: 100)
            #expect(read.entries == (1...3).map { StreamEntry(offset: UInt64($0), payload: payload($0)) })
            #expect(read.latestOffset == 3)
            // since = 0 on an untrimmed stream: nothing was lost.
            #expect(read.recovered)
            // Streams are independent.
            #expect(try await streams.append("other", payload(1), maxLength: 100, ttl: nil).offset == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func payloadsRoundTripAndOversizedOnesAreRefused(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            _ = try await streams.append("s", allByteValues, maxLength: 10, ttl: nil)
            _ = try await streams.append("s", bytesWithNULs, maxLength: 10, ttl: nil)
            _ = try await streams.append("s", [], maxLength: 10, ttl: nil)
            await expectInvalidArgument("oversized payload") {
                _ = try await streams.append("s", [UInt8](repeating: 0, count: StoreLimits.maxValueBytes + 1), maxLength: 10, ttl: nil)
            }
            await expectInvalidArgument("empty name") { _ = try await streams.append("", [1], maxLength: 10, ttl: nil) }
            await expectInvalidArgument("empty name read") { _ = try await streams.read("", after: 0, limit: 10) }
            await expectInvalidArgument("zero ttl") { _ = try await streams.append("s", [1], maxLength: 10, ttl: .zero) }
            let read = try await streams.read("s", after: 0, limit: 10)
            #expect(read.entries.map(\.payload) == [allByteValues, bytesWithNULs, []])
            #expect(read.latestOffset == 3)
        }
    }

    @Test(arguments: Backend.allCases)
    func trimmingKeepsTheNewestAndRecoveredMarksEveryEdge(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            for n in 1...10 { _ = try await streams.append("room", payload(n), maxLength: 3, ttl: nil) }
            func entries(_ offsets: ClosedRange<Int>) -> [StreamEntry] { offsets.map { StreamEntry(offset: UInt64($0), payload: payload($0)) } }
            // Kept: 8, 9, 10.
            let fromStart = try await streams.read("room", after: 0, limit: 100)
            #expect(fromStart.withoutEpoch == StreamRead(entries: entries(8...10), latestOffset: 10, recovered: false))
            // since = oldest - 1: exactly what was missed.
            #expect(try await streams.read("room", after: 7, limit: 100).withoutEpoch == StreamRead(entries: entries(8...10), latestOffset: 10, recovered: true))
            // One too old: offset 7 is gone.
            #expect(try await streams.read("room", after: 6, limit: 100).withoutEpoch == StreamRead(entries: entries(8...10), latestOffset: 10, recovered: false))
            #expect(try await streams.read("room", after: 9, limit: 100).withoutEpoch == StreamRead(entries: entries(10...10), latestOffset: 10, recovered: true))
            // Up to date.
            #expect(try await streams.read("room", after: 10, limit: 100).withoutEpoch == StreamRead(entries: [], latestOffset: 10, recovered: true))
            // Ahead of latest: the stream this reader knew is gone.
            #expect(try await streams.read("room", after: 11, limit: 100).withoutEpoch == StreamRead(entries: [], latestOffset: 10, recovered: false))
            #expect(try await streams.read("room", after: UInt64.max, limit: 100).withoutEpoch == StreamRead(entries: [], latestOffset: 10, recovered: false))
            // Trimming never reuses an offset.
            #expect(try await streams.append("room", payload(11), maxLength: 3, ttl: nil).offset == 11)
            // A smaller maxLength trims further; 0 clamps to 1.
            _ = try await streams.append("room", payload(12), maxLength: 0, ttl: nil)
            #expect(try await streams.read("room", after: 0, limit: 100).withoutEpoch == StreamRead(entries: entries(12...12), latestOffset: 12, recovered: false))
            #expect(try await streams.read("room", after: 11, limit: 100).recovered)
        }
    }

    @Test(arguments: Backend.allCases)
    func aStreamThatNeverExisted(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            #expect(try await streams.read("nothing", after: 0, limit: 10).withoutEpoch == StreamRead(entries: [], latestOffset: 0, recovered: true))
            #expect(try await streams.read("nothing", after: 5, limit: 10).withoutEpoch == StreamRead(entries: [], latestOffset: 0, recovered: false))
        }
    }

    @Test(arguments: Backend.allCases)
    func pagingWithLimit(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            for n in 1...25 { _ = try await streams.append("log", payload(n), maxLength: 100, ttl: nil) }
            var since: UInt64 = 0
            var pages: [[UInt64]] = []
            while true {
                let page = try await streams.read("log", after: since, limit: 10)
                #expect(page.recovered)
                #expect(page.latestOffset == 25)
                guard let last = page.entries.last else { break }
                #expect(page.entries.map(\.payload) == page.entries.map { payload(Int($0.offset)) })
                pages.append(page.entries.map(\.offset))
                since = last.offset
            }
            #expect(pages == [Array(1...10), Array(11...20), Array(21...25)])
            // Limits are clamped to 1...maxBatch.
            #expect(try await streams.read("log", after: 0, limit: 0).entries.map(\.offset) == [1])
            #expect(try await streams.read("log", after: 0, limit: -7).entries.map(\.offset) == [1])
        }
    }

    @Test(arguments: Backend.allCases)
    func readReturnsAtMostMaxBatch(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            let total = StoreLimits.maxBatch + 5
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<total { group.addTask { _ = try await streams.append("big", [1], maxLength: 10_000, ttl: nil) } }
                try await group.waitForAll()
            }
            let read = try await streams.read("big", after: 0, limit: 1_000_000)
            #expect(read.entries.count == StoreLimits.maxBatch)
            #expect(read.latestOffset == UInt64(total))
        }
    }

    @Test(arguments: Backend.allCases)
    func ttlExpiresEntriesAndCounterTogether(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            var name = ""
            try await timingSensitive { attempt in
                name = "temp\(attempt)"
                let started = ContinuousClock.now
                let offsets = [try await streams.append(name, payload(1), maxLength: 10, ttl: .milliseconds(200)).offset,
                               try await streams.append(name, payload(2), maxLength: 10, ttl: .milliseconds(200)).offset]
                let latest = try await streams.read(name, after: 0, limit: 10).latestOffset
                guard ContinuousClock.now - started < .milliseconds(190) else { return false }
                #expect(offsets == [1, 2])
                #expect(latest == 2)
                return true
            }
            #expect(try await eventually(timeout: .seconds(3)) { try await streams.read(name, after: 0, limit: 10).latestOffset == 0 })
            // A reader at 2 sees a stream behind it: lost, reload.
            #expect(try await streams.read(name, after: 2, limit: 10).withoutEpoch == StreamRead(entries: [], latestOffset: 0, recovered: false))
            // The offsets restart with the stream.
            #expect(try await streams.append(name, payload(1), maxLength: 10, ttl: nil).offset == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func eachAppendRestartsTheTTL(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            try await timingSensitive { attempt in
                let name = "live\(attempt)"
                var previousStart = ContinuousClock.now
                _ = try await streams.append(name, payload(1), maxLength: 10, ttl: .milliseconds(400))
                for n in 2...4 {
                    try await Task.sleep(for: .milliseconds(150))
                    let callStart = ContinuousClock.now
                    _ = try await streams.append(name, payload(n), maxLength: 10, ttl: .milliseconds(400))
                    guard ContinuousClock.now - previousStart < .milliseconds(380) else { return false }
                    previousStart = callStart
                }
                // 450+ ms after the first append (more than its ttl), all four entries are there.
                let read = try await streams.read(name, after: 0, limit: 10)
                guard ContinuousClock.now - previousStart < .milliseconds(380) else { return false }
                #expect(read.entries.map(\.offset) == [1, 2, 3, 4])
                #expect(try await eventually(timeout: .seconds(3)) { try await streams.read(name, after: 0, limit: 10).latestOffset == 0 })
                return true
            }
            // Without ttl, an append makes the stream permanent again.
            try await timingSensitive { attempt in
                let name = "kept\(attempt)"
                let started = ContinuousClock.now
                _ = try await streams.append(name, payload(1), maxLength: 10, ttl: .milliseconds(150))
                _ = try await streams.append(name, payload(2), maxLength: 10, ttl: nil)
                guard ContinuousClock.now - started < .milliseconds(140) else { return false }
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await streams.read(name, after: 0, limit: 10).latestOffset == 2)
                return true
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentAppendsGetDistinctConsecutiveOffsets(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            let offsets = try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
                for i in 0..<100 {
                    group.addTask { (i, try await streams.append("busy", self.payload(i), maxLength: 1_000, ttl: nil).offset) }
                }
                var offsets: [Int: UInt64] = [:]
                for try await (i, offset) in group { offsets[i] = offset }
                return offsets
            }
            #expect(offsets.values.sorted() == Array(1...100))
            // Each entry holds the payload of the append that was given its offset.
            let read = try await streams.read("busy", after: 0, limit: 1_000)
            #expect(read.entries.count == 100)
            for entry in read.entries {
                let writer = offsets.first { $0.value == entry.offset }?.key
                #expect(writer.map(payload) == entry.payload)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func anEpochLastsAsLongAsItsStream(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            // No stream, no epoch; `open` creates one that the first append keeps.
            #expect(try await streams.read("e", after: 0, limit: 10).epoch == nil)
            let opened = try await streams.open("e", ttl: nil)
            #expect(opened.offset == 0)
            #expect(opened.epoch.count == 16)
            #expect(try await streams.open("e", ttl: nil) == opened)
            #expect(try await streams.read("e", after: 0, limit: 10).epoch == opened.epoch)
            let first = try await streams.append("e", payload(1), maxLength: 10, ttl: nil)
            #expect(first == StreamPosition(offset: 1, epoch: opened.epoch))
            #expect(try await streams.append("e", payload(2), maxLength: 10, ttl: nil) == StreamPosition(offset: 2, epoch: opened.epoch))
            #expect(try await streams.open("e", ttl: nil) == StreamPosition(offset: 2, epoch: opened.epoch))
            let read = try await streams.read("e", after: 1, limit: 10)
            #expect(read.epoch == opened.epoch)
            #expect(read.entries.map(\.offset) == [2])
            // Each stream has its own.
            let other = try await streams.append("f", payload(1), maxLength: 10, ttl: nil)
            #expect(other.epoch != opened.epoch)
        }
    }

    @Test(arguments: Backend.allCases)
    func aLostStreamComesBackInANewEpoch(_ backend: Backend) async throws {
        try await withStreams(backend) { streams async throws in
            let name = "lost"
            let before = try await streams.append(name, payload(1), maxLength: 10, ttl: .milliseconds(200))
            #expect(try await eventually(timeout: .seconds(3)) { try await streams.read(name, after: 0, limit: 10).latestOffset == 0 })
            #expect(try await streams.read(name, after: 0, limit: 10).epoch == nil)
            // The offsets restart, and the epoch says so: offset 1 now is not the old offset 1.
            let after = try await streams.append(name, payload(1), maxLength: 10, ttl: nil)
            #expect(after.offset == 1)
            #expect(after.epoch != before.epoch)
            // An epoch opened on an empty stream that then expires is not reused either.
            let opened = try await streams.open(name + "-o", ttl: .milliseconds(150))
            #expect(try await eventually(timeout: .seconds(3)) { try await streams.read(name + "-o", after: 0, limit: 10).epoch == nil })
            #expect(try await streams.append(name + "-o", payload(1), maxLength: 10, ttl: nil).epoch != opened.epoch)
        }
    }
}

extension StreamRead {
    /// The read without its epoch (random per stream), for comparing entries and offsets.
    var withoutEpoch: StreamRead { StreamRead(entries: entries, latestOffset: latestOffset, recovered: recovered) }
}
