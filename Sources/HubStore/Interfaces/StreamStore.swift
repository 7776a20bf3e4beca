/// Bounded, ordered logs with offsets: a room's history, so that a portal that reconnects with
/// `since` gets what it missed, or learns that the gap is too old and it must reload.
///
/// Offsets are per stream, start at 1 and increase by 1 with each append; trimming old entries
/// never reuses or shifts an offset.
///
/// Each stream has an **epoch**: an opaque random text created with the stream and kept while it
/// lives. A stream that is lost (expired, flushed, evicted, a restarted in-memory store) and
/// created again gets a new epoch, so offsets are only comparable within one epoch: a reader
/// that remembers `(epoch, offset)` can tell "nothing missed" from "the history I knew is gone"
/// even when the new stream's offsets have grown past the old ones.
public protocol StreamStore: Sendable {
    /// Appends `payload` and returns its offset and the stream's epoch. Keeps at most
    /// `maxLength` newest entries (clamped to 1...`StoreLimits.maxStreamLength`). With `ttl`,
    /// the whole stream (entries, offset counter and epoch) disappears after `ttl` without
    /// appends, each append restarting the clock.
    func append(_ stream: String, _ payload: [UInt8], maxLength: Int, ttl: Duration?) async throws(StoreError) -> StreamPosition
    /// Up to `limit` (clamped to 1...`StoreLimits.maxBatch`) entries with offsets greater than
    /// `since`, oldest first, read atomically with the stream's latest offset and epoch.
    func read(_ stream: String, after since: UInt64, limit: Int) async throws(StoreError) -> StreamRead
    /// The stream's latest offset and epoch, creating the epoch of an empty stream (with `ttl`,
    /// like an append) so that a reader who arrives before the first entry holds an epoch the
    /// first append keeps. Appends nothing.
    func open(_ stream: String, ttl: Duration?) async throws(StoreError) -> StreamPosition
}

/// Where a stream stands: an offset within an epoch.
public struct StreamPosition: Sendable, Equatable {
    public var offset: UInt64
    public var epoch: String

    public init(offset: UInt64, epoch: String) {
        self.offset = offset
        self.epoch = epoch
    }

    /// A fresh epoch: 64 random bits in hex, so two lifetimes of one stream never share one.
    public static func newEpoch() -> String {
        let hex = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
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
    /// The stream's epoch; nil when the stream does not exist or has no epoch yet (`open`
    /// creates one).
    public var epoch: String?

    public init(entries: [StreamEntry], latestOffset: UInt64, recovered: Bool, epoch: String? = nil) {
        self.entries = entries
        self.latestOffset = latestOffset
        self.recovered = recovered
        self.epoch = epoch
    }
}
