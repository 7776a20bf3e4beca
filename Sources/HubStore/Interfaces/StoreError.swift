import HubIO

/// What every store operation throws, whatever the backend.
///
/// The cases are the distinctions a caller acts on: `unavailable` and `timeout` become 503 with
/// `Retry-After` (the hub reconnects by itself), `invalidArgument` is the caller's bug or a
/// client's oversized input (400/413), `conflict` is a unique or state violation (409).
/// Backend details stay in the message for logs; they never decide control flow.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The backend is down, not yet connected, or the connection was lost mid-operation.
    case unavailable(String)
    /// The backend did not answer within the operation's deadline.
    case timeout
    /// A key, value or argument outside `StoreLimits` or otherwise malformed.
    case invalidArgument(String)
    /// A uniqueness or integrity constraint refused the write (e.g. a duplicate slug).
    case conflict(String)
    /// Anything else the backend reported (a bug, a schema mismatch): logged, answered with 500.
    case backend(String)

    public var description: String {
        switch self {
        case .unavailable(let m): return "store unavailable: \(m)"
        case .timeout: return "store timeout"
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .conflict(let m): return "conflict: \(m)"
        case .backend(let m): return "store error: \(m)"
        }
    }

    /// True for errors that go away by themselves (retry later, answer 503).
    public var isTransient: Bool {
        switch self {
        case .unavailable, .timeout: return true
        default: return false
        }
    }
}

/// Bounds on every input, the same for both backends so that the conformance suite can show
/// that an oversized input is refused identically (and never half-written).
public enum StoreLimits {
    /// Keys and channel/stream/queue names, in UTF-8 bytes (before the backend's namespace).
    public static let maxKeyBytes = 512
    /// A key/value value, a pub/sub payload, a stream entry or a queue message payload.
    public static let maxValueBytes = 4 << 20
    /// Entries one stream keeps at most (`append`'s `maxLength` is clamped to it).
    public static let maxStreamLength = 100_000
    /// Entries one `read` or `claim` returns at most.
    public static let maxBatch = 1_000

    /// Throws `invalidArgument` unless `key` is non-empty and within `maxKeyBytes`.
    @inlinable
    public static func check(key: String) throws(StoreError) {
        let n = key.utf8.count
        if n == 0 || n > maxKeyBytes { throw .invalidArgument("key length \(n) outside 1...\(maxKeyBytes)") }
    }

    /// A page or batch size clamped to 1...`maxBatch` (reads that take a `limit`).
    @inlinable
    public static func clampBatch(_ limit: Int) -> Int { min(max(limit, 1), maxBatch) }

    /// Throws `invalidArgument` when `value` is over `maxValueBytes`.
    @inlinable
    public static func check(value: [UInt8]) throws(StoreError) {
        if value.count > maxValueBytes { throw .invalidArgument("value of \(value.count) bytes over \(maxValueBytes)") }
    }
}

/// Wall-clock milliseconds since 1970, the time unit of everything a store persists or compares
/// across nodes (lease deadlines, TTL expiries). Passed in explicitly, never read inside a store,
/// so that every node (and every test) decides what "now" is, and Lua scripts stay deterministic.
public typealias StoreMillis = Int64

extension StoreMillis {
    /// The current wall-clock time in milliseconds.
    public static func now() -> StoreMillis { unixMilliseconds() }
}

extension Duration {
    /// Whole milliseconds, rounded down (TTLs and timeouts are kept to the millisecond).
    /// Saturates at the ends of `Int64` instead of trapping, so a caller's absurd duration
    /// reaches the range checks (and becomes `invalidArgument`) rather than crashing the hub.
    public var storeMillis: StoreMillis {
        let (s, atto) = components
        let (ms, overflow) = s.multipliedReportingOverflow(by: 1000)
        if overflow { return s < 0 ? .min : .max }
        let (total, sumOverflow) = ms.addingReportingOverflow(atto / 1_000_000_000_000_000)
        return sumOverflow ? (s < 0 ? .min : .max) : total
    }
}

