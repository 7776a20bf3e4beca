/// What a command's sender is told, exactly once, on the client's loop.
public typealias RedisCompletion = (Result<RedisValue, RedisError>) -> Void

/// One command written to the connection whose reply has not been read yet.
struct PendingCommand {
    /// Sequence number, also handed to hiredis as the callback's `privdata`: the reply callback
    /// checks that hiredis and this queue agree on which command a reply belongs to.
    let seq: UInt64
    /// Monotonic deadline in nanoseconds; `UInt64.max` for none.
    let deadline: UInt64
    /// Loop time when it was sent, for the latency histogram.
    let start: UInt64
    /// `nil` once the sender has been answered (it timed out): the reply, when it comes, is
    /// read and dropped. The entry itself stays so that replies keep matching commands in order.
    var completion: RedisCompletion?
    /// Loop time at which it timed out (0 while live), for stall detection.
    var timedOutAt: UInt64 = 0
}

/// The FIFO of outstanding commands of one connection, and its timeout sweep.
///
/// Redis answers in order, and so does hiredis's callback list, so a reply always belongs to
/// the oldest entry: a queue, not a dictionary. It is an array with a moving head (a deque
/// without a dependency): popping is O(1) and the consumed prefix is dropped in bulk.
///
/// Timeouts are not timers. The client's one sweep tick calls `expire(now:)`, which scans in
/// FIFO order only when the earliest deadline it knows of has passed, so a sweep over an idle
/// or healthy connection costs one comparison.
struct PendingCommands {
    private var items: [PendingCommand] = []
    private var head = 0
    /// Earliest deadline among live entries, or earlier (it is only lowered between scans).
    private(set) var earliestDeadline: UInt64 = .max

    /// Entries outstanding (live and timed out).
    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }
    /// True when some live entry has a deadline (the sweep tick must keep running).
    var hasDeadlines: Bool { earliestDeadline != .max }

    mutating func append(_ command: PendingCommand) {
        items.append(command)
        if command.deadline < earliestDeadline { earliestDeadline = command.deadline }
    }

    /// The oldest entry, removed. `nil` when nothing is outstanding.
    mutating func popFirst() -> PendingCommand? {
        guard head < items.count else { return nil }
        // Move the closure out rather than copy it (saves a retain/release pair per reply), and
        // leave nil behind: a 10,000-deep pipeline should not keep 10,000 answered closures (and
        // what they capture) alive until the next compaction.
        var completion: RedisCompletion?
        swap(&completion, &items[head].completion)
        var first = items[head]
        first.completion = completion
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.count <= 4096)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return first
    }

    /// Marks every live entry whose deadline has passed as timed out and returns their
    /// completions, for the caller to run after the scan (a completion may send again, which
    /// appends to this queue).
    mutating func expire(now: UInt64) -> [RedisCompletion] {
        guard now >= earliestDeadline else { return [] }
        var expired: [RedisCompletion] = []
        var earliest = UInt64.max
        var i = head
        while i < items.count {
            if let completion = items[i].completion {
                let deadline = items[i].deadline
                if deadline <= now {
                    expired.append(completion)
                    items[i].completion = nil
                    items[i].timedOutAt = now
                } else if deadline < earliest {
                    earliest = deadline
                }
            }
            i += 1
        }
        earliestDeadline = earliest
        return expired
    }

    /// When the oldest outstanding entry timed out, if it did: the connection is stuck behind
    /// it for at least `now - value`.
    var oldestTimedOutAt: UInt64? {
        guard head < items.count, items[head].timedOutAt != 0 else { return nil }
        return items[head].timedOutAt
    }

    /// Empties the queue and returns the completions still waiting, oldest first.
    mutating func removeAll() -> [RedisCompletion] {
        var waiting: [RedisCompletion] = []
        waiting.reserveCapacity(count)
        for i in head..<items.count {
            if let c = items[i].completion { waiting.append(c) }
        }
        items.removeAll(keepingCapacity: false)
        head = 0
        earliestDeadline = .max
        return waiting
    }
}
