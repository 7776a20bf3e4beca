/// Input checks shared by the key/value, counter and stream stores of both backends, so that a
/// bad TTL is refused identically (and before any backend call) wherever it is sent.
enum HotStateChecks {
    /// The longest TTL or window accepted: ten years. Anything longer is a caller's bug, and
    /// the bound keeps `now + ttl` far from overflowing on either backend.
    static let maxTTLMilliseconds: Int64 = 10 * 366 * 24 * 3600 * 1000

    /// `ttl` in whole milliseconds; `invalidArgument` unless it is within 1 ms...10 years
    /// (Redis refuses `PX 0`, and a zero TTL would be a delete in disguise).
    static func milliseconds(_ ttl: Duration, _ what: String = "ttl") throws(StoreError) -> Int64 {
        let ms = ttl.storeMillis
        guard ms >= 1, ms <= maxTTLMilliseconds else {
            throw .invalidArgument("\(what) \(ttl) outside 1 ms...\(maxTTLMilliseconds / 1000) s")
        }
        return ms
    }

    /// `keys` each valid, and no more of them than `StoreLimits.maxBatch` in one call.
    static func check(keys: [String]) throws(StoreError) {
        if keys.count > StoreLimits.maxBatch {
            throw .invalidArgument("\(keys.count) keys in one call, over \(StoreLimits.maxBatch)")
        }
        for key in keys { try StoreLimits.check(key: key) }
    }

    /// `maxLength` clamped to 1...`StoreLimits.maxStreamLength`.
    static func clampStreamLength(_ maxLength: Int) -> Int { min(max(maxLength, 1), StoreLimits.maxStreamLength) }
}
