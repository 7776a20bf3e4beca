import Foundation

/// A loop's short memory of store lookups that every request repeats (a device token's
/// principal, a user's org roles, an API key, an org's policy): each answer is reused for
/// `lifetime` on the loop that looked it up, so a busy caller costs one store read per second
/// per loop instead of one per request. The price is that a change (a revocation, a removed
/// member, a new policy) reaches a loop up to `lifetime` late, unless the node that made it
/// forgets the entry (`forget`), which it does for its own changes.
///
/// Touched only on its loop (held in a `LoopLocal`), so no lock. Bounded: when full it starts
/// over, which costs at most one store read per key.
final class RecentLookups<Key: Hashable, Value> {
    let lifetime: UInt64
    let capacity: Int
    private var entries: [Key: (value: Value, until: UInt64)] = [:]

    init(lifetime: UInt64 = 1_000_000_000, capacity: Int = 20_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func value(for key: Key, now: UInt64) -> Value? {
        guard let entry = entries[key] else { return nil }
        if now >= entry.until { entries[key] = nil; return nil }
        return entry.value
    }

    func remember(_ key: Key, _ value: Value, now: UInt64) {
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = (value, now &+ lifetime)
    }

    func forget(where matches: (Key, Value) -> Bool) {
        entries = entries.filter { !matches($0.key, $0.value.value) }
    }

    var count: Int { entries.count }
}
