import Synchronization

/// `StreamStore` in process memory: per stream, the kept payloads in offset order and the
/// latest offset ever given out.
///
/// The kept entries are always the consecutive offsets `latest - count + 1 ... latest`, so a
/// read finds `since + 1` by arithmetic instead of a search. Trimming drops from the front and
/// never touches `latest`, so an offset is never reused while the stream exists; with `ttl`,
/// the stream (entries, `latest` and epoch) expires as a whole, as on Redis. Streams live in
/// memory, so a restarted process starts every stream in a new epoch.
public final class EmbeddedStreamStore: StreamStore {
    private let table = Mutex(ExpiringTable<StreamLog>())

    public init() {}

    public func append(_ stream: String, _ payload: [UInt8], maxLength: Int, ttl: Duration?) async throws(StoreError) -> StreamPosition {
        try StoreLimits.check(key: stream)
        try StoreLimits.check(value: payload)
        let keep = HotStateChecks.clampStreamLength(maxLength)
        return try withLog(stream, ttl: ttl) { log in
            StreamPosition(offset: log.append(payload, keep: keep), epoch: log.epoch)
        }
    }

    public func open(_ stream: String, ttl: Duration?) async throws(StoreError) -> StreamPosition {
        try StoreLimits.check(key: stream)
        return try withLog(stream, ttl: ttl) { log in StreamPosition(offset: log.latest, epoch: log.epoch) }
    }

    /// Runs `body` on the stream's log, created (with a new epoch) when it does not exist, and
    /// restarts its clock.
    private func withLog<R>(_ stream: String, ttl: Duration?, _ body: (inout StreamLog) -> R) throws(StoreError) -> R {
        let ms = try ttl.map { ttl throws(StoreError) in try HotStateChecks.milliseconds(ttl) }
        let now = ContinuousClock.now
        let deadline = ms.map { now + .milliseconds($0) }
        return table.withLock { table in
            let result = table.modify(stream, now: now) { entry in
                entry.deadline = deadline
                return body(&entry.value)
            }
            if let result { return result }
            var log = StreamLog(epoch: StreamPosition.newEpoch())
            let created = body(&log)
            table.store(stream, .init(value: log, deadline: deadline), now: now)
            return created
        }
    }

    public func read(_ stream: String, after since: UInt64, limit: Int) async throws(StoreError) -> StreamRead {
        try StoreLimits.check(key: stream)
        let limit = StoreLimits.clampBatch(limit)
        let now = ContinuousClock.now
        return table.withLock { table in
            guard let log = table.live(stream, now: now)?.value else {
                // Never existed or expired: latest is 0, and only a reader at 0 is up to date.
                return StreamRead(entries: [], latestOffset: 0, recovered: since == 0)
            }
            return log.read(after: since, limit: limit)
        }
    }

    /// Streams held, expired ones not yet swept included.
    var storedEntryCount: Int { table.withLock { $0.storedCount } }
}

/// One stream's kept entries: `payloads[head...]` hold offsets `latest - count + 1 ... latest`.
struct StreamLog {
    let epoch: String
    private var payloads: [[UInt8]] = []
    private var head = 0
    private(set) var latest: UInt64 = 0

    init(epoch: String) { self.epoch = epoch }

    var count: Int { payloads.count - head }

    /// Appends, trims to the newest `keep`, and returns the new entry's offset.
    mutating func append(_ payload: [UInt8], keep: Int) -> UInt64 {
        latest += 1
        payloads.append(payload)
        let excess = count - keep
        if excess > 0 {
            // Release the dropped payloads now; compact the array once the dead prefix is at
            // least half of it (amortized O(1) per trimmed entry).
            for i in head..<(head + excess) { payloads[i] = [] }
            head += excess
            if head >= payloads.count / 2 {
                payloads.removeFirst(head)
                head = 0
            }
        }
        return latest
    }

    /// Entries after `since` (at most `limit`), with `recovered` as `StreamRead` defines it.
    func read(after since: UInt64, limit: Int) -> StreamRead {
        guard since < latest else {
            // Nothing after `since`; a reader ahead of `latest` saw a stream that is gone.
            return StreamRead(entries: [], latestOffset: latest, recovered: since == latest, epoch: epoch)
        }
        let oldest = latest - UInt64(count) + 1
        let recovered = oldest <= since + 1
        let first = max(since + 1, oldest)
        let start = head + Int(first - oldest)
        let end = min(start + limit, payloads.count)
        var entries: [StreamEntry] = []
        entries.reserveCapacity(end - start)
        for i in start..<end {
            entries.append(StreamEntry(offset: first + UInt64(i - start), payload: payloads[i]))
        }
        return StreamRead(entries: entries, latestOffset: latest, recovered: recovered, epoch: epoch)
    }
}
