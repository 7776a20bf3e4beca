import Foundation
import HubHTTP
import HubStore

/// One rate rule: at most `limit` events per `window`.
public struct RateLimit: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Sliding-window approximation: the current fixed window (aligned to wall-clock
        /// multiples of `window`, the same on every node) plus the previous one weighted by how
        /// much of it still overlaps the last `window`. No burst of 2× at a window boundary,
        /// as a plain fixed window allows, for two counters per key.
        case sliding
        /// One counter that starts with the first event and lasts `window` (the store's fixed
        /// window): "`limit` in total" when `window` covers the subject's whole lifetime
        /// (an activation code's 24 h).
        case fixed
    }

    /// Events allowed per window: 1...10,000,000.
    public var limit: Int
    /// 1 s ... 30 days.
    public var window: Duration
    public var kind: Kind

    public init(limit: Int, window: Duration, kind: Kind = .sliding) {
        self.limit = limit
        self.window = window
        self.kind = kind
    }

    /// `limit` events per minute, sliding.
    public static func perMinute(_ limit: Int) -> RateLimit { RateLimit(limit: limit, window: .seconds(60)) }

    /// Throws `invalidArgument` when a field is outside its range (a configuration mistake).
    public func validate() throws(StoreError) {
        guard (1...10_000_000).contains(limit) else { throw .invalidArgument("rate limit \(limit) outside 1...10000000") }
        let ms = window.storeMillis
        guard ms >= 1_000 && ms <= 30 * 86_400_000 else { throw .invalidArgument("rate window \(ms) ms outside 1 s...30 d") }
    }
}

/// The answer of a rate check.
public struct RateLimitDecision: Sendable, Equatable {
    public var allowed: Bool
    /// Events left in the current window (0 when denied).
    public var remaining: Int
    /// Whole seconds until an event would be allowed again (at least 1 when denied, 0 when allowed).
    public var retryAfterSeconds: Int

    public init(allowed: Bool, remaining: Int, retryAfterSeconds: Int) {
        self.allowed = allowed
        self.remaining = remaining
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// The 429 a denied decision answers with: code `rate_limited`, `retryAfterSeconds` set.
    public var problem: Problem { Problem.rateLimited(retryAfterSeconds: retryAfterSeconds) }
}

/// Rate limits over a `CounterStore`, so that every node counts against the same budget.
///
/// Keys are the caller's (`req:apikey:<id>`, `fail:ip:<addr>` …), stored under `rl:`. Each
/// check is two or three counter round trips; the counters expire by themselves.
public struct RateLimiter: Sendable {
    public let counters: any CounterStore
    /// Wall-clock milliseconds; aligns sliding windows across nodes. Injected by tests.
    let now: @Sendable () -> StoreMillis

    public init(counters: any CounterStore) { self.init(counters: counters, now: { StoreMillis.now() }) }

    init(counters: any CounterStore, now: @escaping @Sendable () -> StoreMillis) {
        self.counters = counters
        self.now = now
    }

    /// Counts one event for `key` and answers whether it is within `limit` per `window`
    /// (sliding). A denied event is not counted (it is rolled back), so a client that waits
    /// `retryAfterSeconds` gets through even if it kept knocking meanwhile.
    public func check(_ key: String, limit: Int, per window: Duration) async throws(StoreError) -> RateLimitDecision {
        try await check(key, RateLimit(limit: limit, window: window))
    }

    /// Counts one event for `key` under `rule`; denied events are rolled back. With `memory`
    /// (one per event loop), the previous window's count of a sliding rule is read once per
    /// window instead of once per event (a finished window no longer changes), and with
    /// `lease > 1` the loop counts `lease` events in the store at once and admits the next
    /// `lease - 1` itself, within the same window: one store call per `lease` events. The
    /// price is exactness: the store may count up to `lease - 1` events per loop that never
    /// happen (a client near its limit is refused a little early, never late). A reservation
    /// that does not fit falls back to counting the one event.
    public func check(_ key: String, _ rule: RateLimit, memory: RateLimitMemory? = nil, lease: Int = 1) async throws(StoreError) -> RateLimitDecision {
        try rule.validate()
        let windowMs = rule.window.storeMillis
        switch rule.kind {
        case .fixed:
            let counter = try await counters.increment(storeKey(key), by: 1, window: rule.window)
            if counter.value <= Int64(rule.limit) {
                return RateLimitDecision(allowed: true, remaining: rule.limit - Int(counter.value), retryAfterSeconds: 0)
            }
            await rollBack(storeKey(key), window: rule.window)
            return denied(afterMilliseconds: counter.resetsInMilliseconds)
        case .sliding:
            let t = now()
            let index = t / windowMs
            if let memory, let remaining = memory.takeLeased(key, window: index) {
                return RateLimitDecision(allowed: true, remaining: remaining, retryAfterSeconds: 0)
            }
            // No reservation once one did not fit in this window: near the limit, count exactly.
            let weight = memory == nil || memory!.leasingStopped(key, window: index) ? 1 : max(1, lease)
            let current = try await counters.increment(storeKey(key, index), by: Int64(weight), window: .milliseconds(2 * windowMs))
            let previous: Int64
            if let known = memory?.count(of: key, window: index - 1) {
                previous = known
            } else {
                previous = try await counters.value(storeKey(key, index - 1))
                memory?.remember(key, window: index - 1, count: previous)
            }
            let elapsed = Double(t % windowMs) / Double(windowMs)
            let estimate = Double(previous) * (1 - elapsed) + Double(current.value)
            if estimate <= Double(rule.limit) + Self.epsilon {
                let remaining = Int((Double(rule.limit) - estimate).rounded(.down))
                if weight > 1 { memory?.lease(key, window: index, count: weight - 1, remaining: remaining) }
                return RateLimitDecision(allowed: true, remaining: remaining, retryAfterSeconds: 0)
            }
            await rollBack(storeKey(key, index), by: weight, window: .milliseconds(2 * windowMs))
            // A reservation too large for what is left: count the one event instead.
            if weight > 1 {
                memory?.stopLeasing(key, window: index)
                return try await check(key, rule, memory: memory, lease: 1)
            }
            return denied(afterMilliseconds: Self.slidingWait(previous: previous, current: current.value - 1, limit: rule.limit,
                                                               elapsed: elapsed, windowMs: windowMs))
        }
    }

    /// Whether one more event would be allowed, without counting one: the gate in front of a
    /// credential check whose failures (only) are counted with `record`. Denied once `limit`
    /// events are counted.
    public func peek(_ key: String, _ rule: RateLimit) async throws(StoreError) -> RateLimitDecision {
        try rule.validate()
        let windowMs = rule.window.storeMillis
        switch rule.kind {
        case .fixed:
            // Adding 0 reads the value with the time left (`value` alone does not tell it).
            let counter = try await counters.increment(storeKey(key), by: 0, window: rule.window)
            if counter.value < Int64(rule.limit) {
                return RateLimitDecision(allowed: true, remaining: rule.limit - Int(counter.value), retryAfterSeconds: 0)
            }
            return denied(afterMilliseconds: counter.resetsInMilliseconds)
        case .sliding:
            let t = now()
            let index = t / windowMs
            let current = try await counters.value(storeKey(key, index))
            let previous = try await counters.value(storeKey(key, index - 1))
            let elapsed = Double(t % windowMs) / Double(windowMs)
            let estimate = Double(previous) * (1 - elapsed) + Double(current)
            if estimate + 1 <= Double(rule.limit) + Self.epsilon {
                return RateLimitDecision(allowed: true, remaining: Int((Double(rule.limit) - estimate).rounded(.down)), retryAfterSeconds: 0)
            }
            return denied(afterMilliseconds: Self.slidingWait(previous: previous, current: current, limit: rule.limit,
                                                               elapsed: elapsed, windowMs: windowMs))
        }
    }

    /// Counts one event for `key` under `rule` without judging it (a failed attempt).
    public func record(_ key: String, _ rule: RateLimit) async throws(StoreError) {
        try rule.validate()
        switch rule.kind {
        case .fixed:
            _ = try await counters.increment(storeKey(key), by: 1, window: rule.window)
        case .sliding:
            let windowMs = rule.window.storeMillis
            _ = try await counters.increment(storeKey(key, now() / windowMs), by: 1, window: .milliseconds(2 * windowMs))
        }
    }

    /// Like `check`, but a denial throws the 429 `Problem` (`rate_limited`, `retryAfterSeconds`
    /// set). Store failures are thrown as `StoreError`.
    @discardableResult
    public func enforce(_ key: String, _ rule: RateLimit) async throws -> RateLimitDecision {
        let decision = try await check(key, rule)
        guard decision.allowed else { throw decision.problem }
        return decision
    }

    // MARK: internals

    /// Slack for the floating-point estimate, so that `4.000000000000001 + 1 ≤ 5` holds at the
    /// very millisecond `retryAfterSeconds` promised.
    static let epsilon = 1e-9

    /// A sliding window's counter lives two windows, so it is still readable as "previous"
    /// throughout the window after its own.
    private func storeKey(_ key: String, _ index: Int64) -> String { "rl:\(key):\(index)" }
    private func storeKey(_ key: String) -> String { "rl:\(key)" }

    /// Undoes a denied event's increment. Best effort: if it fails, the denied event counts,
    /// which errs on the strict side.
    private func rollBack(_ storeKey: String, by count: Int = 1, window: Duration) async {
        _ = try? await counters.increment(storeKey, by: -Int64(count), window: window)
    }

    private func denied(afterMilliseconds ms: Int64) -> RateLimitDecision {
        RateLimitDecision(allowed: false, remaining: 0, retryAfterSeconds: max(1, Int((ms + 999) / 1000)))
    }

    /// Milliseconds until one more event fits under a sliding limit, given the events counted
    /// in the previous and current windows and how far (0..<1) the current window is.
    /// The estimate at fraction g of a window is previous·(1−g) + current; one more event fits
    /// when that is at most `limit − 1`. Rounded to the nearest millisecond (the clock's unit),
    /// so that floating-point noise never adds a whole second to a `Retry-After`.
    static func slidingWait(previous: Int64, current: Int64, limit: Int, elapsed: Double, windowMs: Int64) -> Int64 {
        let room = Double(limit - 1)
        let p = Double(previous), c = Double(max(current, 0))
        let w = Double(windowMs)
        if c <= room {
            // Fits later in this window, once the previous window's weight has decayed enough.
            guard p > 0 else { return 0 }
            let target = 1 - (room - c) / p
            return Int64(((max(target, elapsed) - elapsed) * w).rounded())
        }
        // The current window alone is over: wait for it to become the previous window, then
        // for its weight to decay to `room`.
        let target = max(0, 1 - room / c)
        return Int64(((1 - elapsed + target) * w).rounded())
    }
}

/// What one event loop remembers for the sliding limits (not thread-safe: the loop's own
/// thread only): the counts of finished windows, and the events it reserved in the store and
/// may still admit itself. Bounded: when full it starts over, which costs one extra store
/// call per key (and forgets leased events, which then counted without happening).
public final class RateLimitMemory {
    private var counts: [String: (window: Int64, count: Int64)] = [:]
    private var leases: [String: (window: Int64, left: Int, remaining: Int)] = [:]
    private let capacity: Int

    public init(capacity: Int = 50_000) { self.capacity = capacity }

    func count(of key: String, window: Int64) -> Int64? {
        guard let entry = counts[key], entry.window == window else { return nil }
        return entry.count
    }

    func remember(_ key: String, window: Int64, count: Int64) {
        if counts.count >= capacity { counts.removeAll(keepingCapacity: true) }
        counts[key] = (window, count)
    }

    /// Takes one leased event of `key` for `window`; its `remaining` estimate, or nil when none
    /// is left (or the lease was for another window).
    func takeLeased(_ key: String, window: Int64) -> Int? {
        guard var entry = leases[key], entry.window == window, entry.left > 0 else { return nil }
        entry.left -= 1
        leases[key] = entry
        return entry.remaining
    }

    /// Whether a reservation of `key` did not fit in `window` (then the loop counts exactly).
    func leasingStopped(_ key: String, window: Int64) -> Bool {
        guard let entry = leases[key] else { return false }
        return entry.window == window && entry.left < 0
    }

    func stopLeasing(_ key: String, window: Int64) {
        leases[key] = (window, -1, 0)
    }

    /// Reserved events of `key` not yet used in `window` (tests).
    func leftover(_ key: String, window: Int64) -> Int {
        guard let entry = leases[key], entry.window == window else { return 0 }
        return max(0, entry.left)
    }

    /// Adds `count` reserved events. Added, not replaced: requests of one loop interleave at
    /// every `await`, so several reservations of one key can be in flight at once, and each
    /// one's events must stay usable (replacing would count events that never happen, many
    /// times over).
    func lease(_ key: String, window: Int64, count: Int, remaining: Int) {
        if let entry = leases[key], entry.window == window {
            // A stopped lease stays stopped: near the limit the loop counts exactly.
            guard entry.left >= 0 else { return }
            leases[key] = (window, entry.left + count, remaining)
            return
        }
        if leases.count >= capacity { leases.removeAll(keepingCapacity: true) }
        leases[key] = (window, count, remaining)
    }
}

@available(*, unavailable)
extension RateLimitMemory: Sendable {}
