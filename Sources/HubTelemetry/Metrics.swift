import Atomics

/// Metrics that cost a loop thread two plain memory operations per update.
///
/// Every metric is *sharded*: one cell per event loop plus one shared cell for other threads.
/// A loop only ever writes its own shard, so an update is a relaxed load and store with no
/// `lock`-prefixed instruction and no cache line bouncing between cores; the scraper sums the
/// shards with relaxed loads. Values may be a few updates stale when scraped, which is fine for
/// Prometheus, and never torn.
public final class MetricCells: @unchecked Sendable {
    private let base: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    /// Cells per shard.
    public let width: Int
    /// Shards: one per loop plus the shared one at index `shards - 1`.
    public let shards: Int

    public init(width: Int, shards: Int) {
        self.width = width
        self.shards = shards
        let count = width * shards
        base = .allocate(capacity: count)
        base.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: count)
    }

    deinit { base.deallocate() }

    @inline(__always)
    private func cell(_ shard: Int, _ index: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: base + (shard * width + index))
    }

    /// Adds `delta` to a cell. `shard` is the caller's loop index, or `nil` for any other thread
    /// (which then pays for an atomic read-modify-write on the shared shard).
    @inline(__always)
    public func add(_ delta: Int, at index: Int, shard: Int?) {
        if let shard, shard < shards - 1 {
            let c = cell(shard, index)
            c.store(c.load(ordering: .relaxed) &+ delta, ordering: .relaxed)
        } else {
            cell(shards - 1, index).wrappingIncrement(by: delta, ordering: .relaxed)
        }
    }

    /// The sum of a cell over all shards.
    public func total(at index: Int) -> Int {
        var sum = 0
        for s in 0..<shards { sum &+= cell(s, index).load(ordering: .relaxed) }
        return sum
    }
}

/// A monotonically increasing count.
public final class Counter: @unchecked Sendable {
    let cells: MetricCells
    init(shards: Int) { cells = MetricCells(width: 1, shards: shards) }
    @inline(__always) public func increment(by n: Int = 1, shard: Int?) { cells.add(n, at: 0, shard: shard) }
    public var value: Int { cells.total(at: 0) }
}

/// A value that goes up and down (open connections, queue depth).
public final class Gauge: @unchecked Sendable {
    let cells: MetricCells
    init(shards: Int) { cells = MetricCells(width: 1, shards: shards) }
    @inline(__always) public func add(_ n: Int, shard: Int?) { cells.add(n, at: 0, shard: shard) }
    public var value: Int { cells.total(at: 0) }
}

/// A latency histogram with fixed bucket bounds, observed in nanoseconds and exposed in seconds.
public final class Histogram: @unchecked Sendable {
    /// Upper bounds in nanoseconds, ascending.
    let bounds: [Int]
    /// Cells: one per bound, then +Inf, then the sum in nanoseconds, then the count.
    let cells: MetricCells

    init(boundsSeconds: [Double], shards: Int) {
        bounds = boundsSeconds.map { Int($0 * 1e9) }
        cells = MetricCells(width: bounds.count + 3, shards: shards)
    }

    @inline(__always)
    public func observe(nanoseconds: Int, shard: Int?) {
        var i = 0
        while i < bounds.count && nanoseconds > bounds[i] { i += 1 }
        cells.add(1, at: i, shard: shard)
        cells.add(nanoseconds, at: bounds.count + 1, shard: shard)
        cells.add(1, at: bounds.count + 2, shard: shard)
    }

    public var count: Int { cells.total(at: bounds.count + 2) }
}

/// Default latency buckets: 50 µs to 10 s, roughly ×2.5 apart.
public let defaultLatencyBuckets: [Double] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
