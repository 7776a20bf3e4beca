/// Counters that expire: fixed-window rate limits (auth attempts per IP, activation attempts,
/// requests per key), counted across every node.
public protocol CounterStore: Sendable {
    /// Adds `delta` to the counter and returns the new value. A counter that does not exist is
    /// created at 0 with an expiry of `window`; later increments do not move the expiry (fixed
    /// window), so `resetsIn` is the `Retry-After` of a caller over its limit.
    func increment(_ key: String, by delta: Int64, window: Duration) async throws(StoreError) -> CounterValue
    /// The current value, 0 when the counter does not exist or has expired.
    func value(_ key: String) async throws(StoreError) -> Int64
    /// Removes the counter (e.g. after a successful login).
    func reset(_ key: String) async throws(StoreError)
}

public struct CounterValue: Sendable, Equatable {
    /// The value after the increment.
    public var value: Int64
    /// Milliseconds until the window ends and the counter disappears.
    public var resetsInMilliseconds: Int64

    public init(value: Int64, resetsInMilliseconds: Int64) {
        self.value = value
        self.resetsInMilliseconds = resetsInMilliseconds
    }
}
