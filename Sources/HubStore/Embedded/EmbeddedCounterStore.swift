import Synchronization

/// `CounterStore` in process memory: fixed-window counters on the monotonic clock.
///
/// A counter is created with a deadline of `window` from its first increment; later increments
/// add to it and leave the deadline alone, so `resetsInMilliseconds` is a correct `Retry-After`.
/// Each operation is one critical section, so concurrent increments never lose an update.
public final class EmbeddedCounterStore: CounterStore {
    private let table = Mutex(ExpiringTable<Int64>())

    public init() {}

    public func increment(_ key: String, by delta: Int64, window: Duration) async throws(StoreError) -> CounterValue {
        try StoreLimits.check(key: key)
        let windowMs = try HotStateChecks.milliseconds(window, "window")
        let now = ContinuousClock.now
        let result: Result<CounterValue, StoreError> = table.withLock { table in
            let existing = table.modify(key, now: now) { entry -> Result<CounterValue, StoreError> in
                let (sum, overflow) = entry.value.addingReportingOverflow(delta)
                if overflow { return .failure(.invalidArgument("counter \(entry.value) + \(delta) overflows Int64")) }
                entry.value = sum
                let left = entry.deadline.map { ($0 - now).storeMillis } ?? windowMs
                return .success(CounterValue(value: sum, resetsInMilliseconds: left))
            }
            if let existing { return existing }
            table.store(key, .init(value: delta, deadline: now + .milliseconds(windowMs)), now: now)
            return .success(CounterValue(value: delta, resetsInMilliseconds: windowMs))
        }
        return try result.get()
    }

    public func value(_ key: String) async throws(StoreError) -> Int64 {
        try StoreLimits.check(key: key)
        let now = ContinuousClock.now
        return table.withLock { $0.live(key, now: now)?.value ?? 0 }
    }

    public func reset(_ key: String) async throws(StoreError) {
        try StoreLimits.check(key: key)
        let now = ContinuousClock.now
        table.withLock { _ = $0.remove(key, now: now) }
    }

    /// Counters held, expired ones not yet swept included.
    var storedEntryCount: Int { table.withLock { $0.storedCount } }
}
