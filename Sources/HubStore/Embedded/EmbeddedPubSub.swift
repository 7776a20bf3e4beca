/// `PubSub` within one process: a publish queues the message on every current local
/// subscription of the channel and returns; each subscription's handler gets its messages one
/// at a time, in publish order, on a task of its own (see `PubSubMailbox`), never under a lock.
///
/// A subscription is active as soon as `subscribe` returns (registration is synchronous).
public final class EmbeddedPubSub: PubSub {
    private let router = PubSubRouter()

    public init() {}

    public func publish(_ channel: String, _ payload: [UInt8]) async throws(StoreError) {
        try StoreLimits.check(key: channel)
        try StoreLimits.check(value: payload)
        router.deliver(channel, payload)
    }

    public func subscribe(_ channel: String, handler: @escaping @Sendable (PubSubMessage) -> Void) async throws(StoreError) -> PubSubSubscription {
        try StoreLimits.check(key: channel)
        let mailbox = PubSubMailbox(handler: handler)
        let router = self.router
        let id = router.makeID()
        router.add(channel, id: id, channel: channel, mailbox) { _ in }
        return RoutedSubscription(mailbox: mailbox) { router.remove(channel, id: id) {} }
    }

    /// Local subscriptions of `channel` (tests).
    func subscriberCount(_ channel: String) -> Int { router.subscriberCount(channel) }
}
