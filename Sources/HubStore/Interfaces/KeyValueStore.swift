/// Keys with values and optional expiry: session tokens (sliding TTL), single-use markers,
/// presence. Values are bytes, stored and returned unchanged (NUL bytes included).
///
/// Expiry is relative (`Duration`), measured by the backend's own clock (Redis's, or the
/// process's monotonic clock for the embedded store), and kept to the millisecond.
public protocol KeyValueStore: Sendable {
    /// The value, or nil when the key does not exist or has expired.
    func get(_ key: String) async throws(StoreError) -> [UInt8]?
    /// The value, and when the key exists its expiry is reset to `ttl` from now in the same
    /// atomic step (Redis `GETEX PX`): a session token's sliding window.
    func get(_ key: String, refreshingTTL ttl: Duration) async throws(StoreError) -> [UInt8]?
    /// Sets the value; `ttl == nil` keeps it until deleted. Replaces any earlier value and expiry.
    func set(_ key: String, _ value: [UInt8], ttl: Duration?) async throws(StoreError)
    /// Sets the value only when the key does not exist; true when it was set.
    func setIfAbsent(_ key: String, _ value: [UInt8], ttl: Duration?) async throws(StoreError) -> Bool
    /// Deletes the keys; returns how many existed.
    @discardableResult
    func delete(_ keys: [String]) async throws(StoreError) -> Int
    /// The time the key has left: nil when it does not exist, `.none` inside when it never expires.
    func timeToLive(_ key: String) async throws(StoreError) -> KeyExpiry?
}

/// What `timeToLive` reports for an existing key.
public enum KeyExpiry: Sendable, Equatable {
    /// The key never expires.
    case never
    /// The key expires after this many milliseconds.
    case after(milliseconds: Int64)
}
