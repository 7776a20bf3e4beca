/// Argument checks both implementations make before touching their state.
enum LeaseQueueArguments {
    /// Terminal messages one `sweep` forgets at most (besides its `limit` of transitions), so
    /// that one call stays short after a long pause; the next sweep continues.
    static let maxPurgesPerSweep = StoreLimits.maxBatch

    static func check(batch: Int, _ name: String) throws(StoreError) {
        guard (1...StoreLimits.maxBatch).contains(batch) else {
            throw .invalidArgument("\(name) \(batch) outside 1...\(StoreLimits.maxBatch)")
        }
    }

    /// `extend`'s `by` in milliseconds: 1 ms ... 12 h (the cap then applies on top).
    static func extensionMillis(_ by: Duration) throws(StoreError) -> StoreMillis {
        let ms = by.storeMillis
        guard ms >= 1 && ms <= 43_200_000 else { throw .invalidArgument("extension \(ms) ms outside 1 ms...12 h") }
        return ms
    }

    /// `release`'s `delay` in milliseconds: 0 (claimable at once) ... 12 h, the range of the
    /// device API's `delay_seconds`.
    static func releaseDelayMillis(_ delay: Duration) throws(StoreError) -> StoreMillis {
        let ms = delay.storeMillis
        guard ms >= 0 && ms <= 43_200_000 else { throw .invalidArgument("release delay \(ms) ms outside 0...12 h") }
        return ms
    }
}
