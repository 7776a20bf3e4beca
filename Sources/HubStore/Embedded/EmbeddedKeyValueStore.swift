import Synchronization

/// `KeyValueStore` in process memory, for a single-node hub without Redis.
///
/// One `Mutex` guards the table; every operation is one short critical section (no await and
/// no allocation-heavy work inside beyond the copy-on-write of the stored arrays), so the
/// operations are atomic exactly as their Redis counterparts (`SET NX`, `GETEX`). Expiry uses
/// the process's monotonic clock: a wall-clock jump neither expires nor revives keys. Expired
/// keys are removed when touched and by `ExpiringTable`'s amortized sweep.
public final class EmbeddedKeyValueStore: KeyValueStore {
    private let table = Mutex(ExpiringTable<[UInt8]>())

    public init() {}

    public func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.check(key: key)
        let now = ContinuousClock.now
        return table.withLock { $0.live(key, now: now)?.value }
    }

    public func get(_ key: String, refreshingTTL ttl: Duration) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.check(key: key)
        let ms = try HotStateChecks.milliseconds(ttl)
        let now = ContinuousClock.now
        let deadline = now + .milliseconds(ms)
        return table.withLock { table in
            table.modify(key, now: now) { entry in
                entry.deadline = deadline
                return entry.value
            }
        }
    }

    public func set(_ key: String, _ value: [UInt8], ttl: Duration?) async throws(StoreError) {
        try StoreLimits.check(key: key)
        try StoreLimits.check(value: value)
        let ms = try ttl.map { ttl throws(StoreError) in try HotStateChecks.milliseconds(ttl) }
        let now = ContinuousClock.now
        let entry = ExpiringTable<[UInt8]>.Entry(value: value, deadline: ms.map { now + .milliseconds($0) })
        table.withLock { $0.store(key, entry, now: now) }
    }

    public func setIfAbsent(_ key: String, _ value: [UInt8], ttl: Duration?) async throws(StoreError) -> Bool {
        try StoreLimits.check(key: key)
        try StoreLimits.check(value: value)
        let ms = try ttl.map { ttl throws(StoreError) in try HotStateChecks.milliseconds(ttl) }
        let now = ContinuousClock.now
        let entry = ExpiringTable<[UInt8]>.Entry(value: value, deadline: ms.map { now + .milliseconds($0) })
        return table.withLock { table in
            if table.live(key, now: now) != nil { return false }
            table.store(key, entry, now: now)
            return true
        }
    }

    @discardableResult
    public func delete(_ keys: [String]) async throws(StoreError) -> Int {
        try HotStateChecks.check(keys: keys)
        let now = ContinuousClock.now
        return table.withLock { table in
            var removed = 0
            for key in keys where table.remove(key, now: now) { removed += 1 }
            return removed
        }
    }

    public func timeToLive(_ key: String) async throws(StoreError) -> KeyExpiry? {
        try StoreLimits.check(key: key)
        let now = ContinuousClock.now
        return table.withLock { table -> KeyExpiry? in
            guard let entry = table.live(key, now: now) else { return nil }
            guard let deadline = entry.deadline else { return .never }
            return .after(milliseconds: (deadline - now).storeMillis)
        }
    }

    /// Entries held, expired ones not yet swept included (tests of the bounded-memory sweep).
    var storedEntryCount: Int { table.withLock { $0.storedCount } }
}
