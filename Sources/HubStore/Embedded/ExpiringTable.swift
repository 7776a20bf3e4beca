/// The embedded hot-state stores' map of keys to values with optional deadlines on the
/// process's monotonic clock. Not thread-safe: each store keeps one inside a `Mutex`.
///
/// Expired entries are removed lazily when touched, and by an amortized sweep triggered from
/// writes: once the writes since the last sweep reach half the table's size (at least
/// `minimumSweepWrites`), or `sweepPeriod` has passed since the last sweep, the whole table is
/// filtered. A sweep costs O(n) and comes at most once per n/2 writes, so writes stay O(1)
/// amortized, and the table never holds more than about 1.5 times the entries that were live
/// at the last sweep plus the writes since: memory stays bounded by what is live, not by what
/// was ever written.
struct ExpiringTable<Value> {
    typealias Instant = ContinuousClock.Instant

    struct Entry {
        var value: Value
        /// nil: never expires.
        var deadline: Instant?

        func isLive(at now: Instant) -> Bool { deadline.map { now < $0 } ?? true }
    }

    private var entries: [String: Entry] = [:]
    private var writesSinceSweep = 0
    private var lastSweep: Instant = .now

    static var minimumSweepWrites: Int { 64 }
    static var sweepPeriod: Duration { .seconds(5) }

    /// Entries held, expired ones not yet removed included (for tests of the sweep).
    var storedCount: Int { entries.count }

    /// The live entry under `key`; an expired one is removed and reads as absent.
    mutating func live(_ key: String, now: Instant) -> Entry? {
        guard let entry = entries[key] else { return nil }
        if entry.isLive(at: now) { return entry }
        entries.removeValue(forKey: key)
        return nil
    }

    /// Stores `entry` under `key`, replacing anything there, and counts a write.
    mutating func store(_ key: String, _ entry: Entry, now: Instant) {
        entries[key] = entry
        noteWrite(now: now)
    }

    /// Changes the live entry under `key` in place (no copy of its value). Returns `nil` when
    /// there is no live entry.
    mutating func modify<R>(_ key: String, now: Instant, _ body: (inout Entry) -> R) -> R? {
        // Taking the entry out leaves its value uniquely referenced, so `body` mutates it
        // without a copy-on-write copy; it goes back under the same key.
        guard var entry = entries.removeValue(forKey: key) else { return nil }
        guard entry.isLive(at: now) else { return nil }
        let result = body(&entry)
        entries[key] = entry
        return result
    }

    /// Removes `key`; true when a live entry was there.
    @discardableResult
    mutating func remove(_ key: String, now: Instant) -> Bool {
        guard let entry = entries.removeValue(forKey: key) else { return false }
        return entry.isLive(at: now)
    }

    /// Counts a write and sweeps when one is due.
    private mutating func noteWrite(now: Instant) {
        writesSinceSweep += 1
        if writesSinceSweep >= max(Self.minimumSweepWrites, entries.count / 2) || now - lastSweep >= Self.sweepPeriod {
            sweep(now: now)
        }
    }

    /// Drops every expired entry.
    mutating func sweep(now: Instant) {
        entries = entries.filter { $0.value.isLive(at: now) }
        writesSinceSweep = 0
        lastSweep = now
    }
}
