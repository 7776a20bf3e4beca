/// A subscriber's bounded queue of room events, above the connection's own output buffer.
///
/// While the connection writes freely, events go straight to it. Once its output passes the
/// socket's soft limit (`markBackpressured`), events wait here instead, where they can still be
/// chosen: past `softLimit` bytes waiting, the oldest `execution.log` events are dropped (a
/// `lagged` notice says how many before the next event goes out); status events are never
/// dropped, and past `hardLimit` bytes of them the subscriber is closed (`slow_consumer`).
/// So a stalled reader costs at most the socket's soft limit plus `hardLimit`, however fast
/// the room runs.
///
/// Pure: the shell (`RoomSubscriber`) writes what `offer` and `next` hand it.
struct SubscriberOutbox<Frame> {
    enum Offer: Equatable {
        /// Write it now.
        case write
        /// Kept for later (the connection is backpressured).
        case queued
        /// Over the hard limit: close the subscriber.
        case close
    }

    struct Item {
        let frame: Frame
        let size: Int
        let isLog: Bool
    }

    let softLimit: Int
    let hardLimit: Int
    private var items: [Item] = []
    private var head = 0
    private(set) var bytes = 0
    /// Logs dropped since the last `lagged` notice.
    private(set) var dropped = 0
    /// Logs dropped over the connection's life (metrics).
    private(set) var droppedTotal = 0
    private(set) var backpressured = false
    /// Waiting items that are logs (nothing to drop when 0).
    private var logCount = 0

    init(softLimit: Int, hardLimit: Int) {
        self.softLimit = softLimit
        self.hardLimit = max(hardLimit, softLimit)
    }

    var count: Int { items.count - head }

    mutating func offer(_ frame: Frame, size: Int, isLog: Bool) -> Offer {
        if !backpressured && count == 0 { return .write }
        items.append(Item(frame: frame, size: size, isLog: isLog))
        bytes += size
        if isLog { logCount += 1 }
        if bytes > softLimit && logCount > 0 { dropOldestLogs() }
        return bytes > hardLimit ? .close : .queued
    }

    /// The connection's output passed its soft limit.
    mutating func markBackpressured() { backpressured = true }

    /// The connection's output drained below its soft limit: the shell writes the `lagged`
    /// notice (when `takeDropped()` is not 0) and then `next()` items until the connection
    /// pushes back again.
    mutating func writable() { backpressured = false }

    mutating func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }

    mutating func next() -> Item? {
        guard !backpressured, head < items.count else { return nil }
        let item = items[head]
        head += 1
        bytes -= item.size
        if item.isLog { logCount -= 1 }
        compact()
        return item
    }

    /// Drops waiting logs, oldest first, until the queue is back to three quarters of the soft
    /// limit (the slack makes the O(n) pass rare: once per quarter of the limit, not per event).
    private mutating func dropOldestLogs() {
        var kept: [Item] = []
        kept.reserveCapacity(count)
        var excess = bytes - softLimit * 3 / 4
        for item in items[head...] {
            if excess > 0 && item.isLog {
                excess -= item.size
                bytes -= item.size
                logCount -= 1
                dropped += 1
                droppedTotal += 1
            } else {
                kept.append(item)
            }
        }
        items = kept
        head = 0
    }

    private mutating func compact() {
        if head == items.count {
            items.removeAll(keepingCapacity: items.capacity <= 1024)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}
