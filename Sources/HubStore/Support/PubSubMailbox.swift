import Synchronization

/// One local subscription's delivery queue, shared by both `PubSub` backends.
///
/// Publishers (or the Redis subscriber's loop) `enqueue` and return at once; a single drainer
/// task at a time hands the messages to the handler, outside every store lock, one at a time
/// and in enqueue order. The drainer exists only while there is something to deliver.
///
/// `cancel()` guarantees that no handler call starts after it returns: a delivery checks the
/// cancelled flag and calls the handler while holding `delivery`, and `cancel` takes `delivery`
/// once after setting the flag, so it waits for a handler already past the check (handlers must
/// not block, so the wait is short). A `cancel` made from inside a handler does not wait (it
/// would wait for itself, or for another subscription's handler that may be cancelling it in
/// turn); the flag still stops every later delivery of the cancelled subscription.
final class PubSubMailbox: Sendable {
    /// Messages waiting for the handler, per subscription, by default. Past it new messages are
    /// dropped and counted (pub/sub is at most once): a handler that stalls costs bounded memory.
    static let defaultMaxPending = 65_536

    private struct State {
        var pending: [PubSubMessage] = []
        var draining = false
        var cancelled = false
        var dropped = 0
    }

    /// True inside a handler call (of any subscription) on the current task.
    @TaskLocal private static var delivering = false

    private let state = Mutex(State())
    private let delivery = Mutex(())
    private let handler: @Sendable (PubSubMessage) -> Void
    private let maxPending: Int

    init(maxPending: Int = PubSubMailbox.defaultMaxPending, handler: @escaping @Sendable (PubSubMessage) -> Void) {
        self.maxPending = maxPending
        self.handler = handler
    }

    /// Queues `message` for delivery; a no-op once cancelled. Any thread; never blocks on a handler.
    func enqueue(_ message: PubSubMessage) {
        let startDrainer = state.withLock { s -> Bool in
            guard !s.cancelled else { return false }
            guard s.pending.count < maxPending else {
                s.dropped += 1
                return false
            }
            s.pending.append(message)
            guard !s.draining else { return false }
            s.draining = true
            return true
        }
        if startDrainer { Task.detached { self.drain() } }
    }

    /// Stops delivery; see the type's comment for the guarantee. Idempotent.
    func cancel() {
        state.withLock { s in
            s.cancelled = true
            s.pending = []
        }
        if !Self.delivering { delivery.withLock { _ in } }
    }

    /// Messages dropped because the queue was full.
    var droppedCount: Int { state.withLock { $0.dropped } }

    /// Delivers until the queue is empty or the mailbox is cancelled. Only one runs at a time
    /// (`draining`), which is what keeps deliveries ordered and one at a time.
    private func drain() {
        while true {
            let batch = state.withLock { s -> [PubSubMessage] in
                if s.cancelled || s.pending.isEmpty {
                    s.draining = false
                    return []
                }
                let batch = s.pending
                s.pending = []
                return batch
            }
            if batch.isEmpty { return }
            for message in batch {
                guard deliver(message) else { return }
            }
        }
    }

    /// One handler call, unless cancelled; false when cancelled.
    private func deliver(_ message: PubSubMessage) -> Bool {
        delivery.withLock { _ -> Bool in
            guard !state.withLock({ $0.cancelled }) else { return false }
            Self.$delivering.withValue(true) { handler(message) }
            return true
        }
    }
}

/// The local side of pub/sub: channel → the mailboxes subscribed to it, under one lock.
///
/// `key` is what the backend calls the channel (the namespaced Redis channel, or the channel
/// itself embedded); `channel` is the caller's name, put back into delivered messages.
final class PubSubRouter: Sendable {
    private struct Route {
        var channel: String
        var mailboxes: [UInt64: PubSubMailbox] = [:]
    }

    private struct State {
        var nextID: UInt64 = 1
        var routes: [String: Route] = [:]
    }

    private let state = Mutex(State())

    /// A fresh subscription id for `add` and `remove`.
    func makeID() -> UInt64 {
        state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
    }

    /// Adds `mailbox` as subscription `id` of `key`, then calls `whileLocked(isFirst)` still
    /// holding the lock, so that a backend subscribe for the first subscriber is ordered with
    /// the unsubscribe of an earlier last one. `whileLocked` must not call back into the router.
    func add(_ key: String, id: UInt64, channel: String, _ mailbox: PubSubMailbox, whileLocked: (_ isFirst: Bool) -> Void) {
        state.withLock { s in
            let isFirst = s.routes[key] == nil
            s.routes[key, default: Route(channel: channel)].mailboxes[id] = mailbox
            whileLocked(isFirst)
        }
    }

    /// Removes subscription `id` of `key` (a no-op when already removed) and, when it was the
    /// last of `key`, calls `whileLocked()` holding the lock (the backend unsubscribe).
    func remove(_ key: String, id: UInt64, whileLocked ifLast: () -> Void) {
        state.withLock { s in
            guard var route = s.routes[key], route.mailboxes.removeValue(forKey: id) != nil else { return }
            if route.mailboxes.isEmpty {
                s.routes.removeValue(forKey: key)
                ifLast()
            } else {
                s.routes[key] = route
            }
        }
    }

    /// Queues `payload` on every mailbox of `key`; returns how many there were.
    @discardableResult
    func deliver(_ key: String, _ payload: [UInt8]) -> Int {
        let target = state.withLock { s -> (String, [PubSubMailbox])? in
            guard let route = s.routes[key] else { return nil }
            return (route.channel, Array(route.mailboxes.values))
        }
        guard let (channel, mailboxes) = target else { return 0 }
        let message = PubSubMessage(channel: channel, payload: payload)
        for mailbox in mailboxes { mailbox.enqueue(message) }
        return mailboxes.count
    }

    /// Local subscriptions of `key` (tests).
    func subscriberCount(_ key: String) -> Int { state.withLock { $0.routes[key]?.mailboxes.count ?? 0 } }
}

/// The `PubSubSubscription` both backends hand out: cancelling stops the mailbox first (so no
/// handler starts afterwards), then detaches it from the router (and the backend, if last).
final class RoutedSubscription: PubSubSubscription {
    private let mailbox: PubSubMailbox
    private let detach: @Sendable () -> Void

    init(mailbox: PubSubMailbox, detach: @escaping @Sendable () -> Void) {
        self.mailbox = mailbox
        self.detach = detach
    }

    func cancel() {
        mailbox.cancel()
        detach()
    }
}
