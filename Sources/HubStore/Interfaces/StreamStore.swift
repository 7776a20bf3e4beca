/// Bounded, ordered logs with offsets: a room's history, so that a portal that reconnects with
/// `since` gets what it missed, or learns that the gap is too old and it must reload.
///
/// Offsets are per stream, start at 1 and increase by 1 with each append; trimming old entries
/// never reuses or shifts an offset.
public protocol StreamStore: Sendable {
    /// Appends `payload` and returns its offset. Keeps at most `maxLength` newest entries
    /// (clamped to 1...`StoreLimits.maxStreamLength`). With `ttl`, the whole stream (entries and
    /// offset counter) disappears after `ttl` without appends, each append restarting the clock.
    func append(_ stream: String, _ payload: [UInt8], maxLength: Int, ttl: Duration?) async throws(StoreError) -> UInt64
    /// Up to `limit` (clamped to 1...`StoreLimits.maxBatch`) entries with offsets greater than
    /// `since`, oldest first, read atomically with the stream's latest offset.
    func read(_ stream: String, after since: UInt64, limit: Int) async throws(StoreError) -> StreamRead
}

public struct StreamEntry: Sendable, Equatable {
    public var offset: UInt64
    public var payload: [UInt8]

    public init(offset: UInt64, payload: [UInt8]) {
        self.offset = offset
        self.payload = payload
    }
}

public struct StreamRead: Sendable, Equatable {
    /// Entries after `since`, oldest first (at most `limit`; page with the last offset).
    public var entries: [StreamEntry]
    /// The offset of the newest entry ever appended (0 for a stream that does not exist).
    public var latestOffset: UInt64
    /// True when no entry after `since` has been trimmed away, so `entries` (and the pages after
    /// them) are exactly what the reader missed. False when the gap is too old (the oldest kept
    /// entry is after `since + 1`), or when `since` is ahead of `latestOffset` (the stream was
    /// lost and restarted, e.g. it expired): the reader must reload instead of replaying.
    public var recovered: Bool

    public init(entries: [StreamEntry], latestOffset: UInt64, recovered: Bool) {
        self.entries = entries
        self.latestOffset = latestOffset
        self.recovered = recovered
    }
}
