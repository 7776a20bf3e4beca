/// Fire-and-forget messages between nodes: room events, `command.available` wake-ups, token
/// revocations. At most once: a node that is not subscribed (or disconnected) when a message is
/// published does not get it; durable replay is the job of `StreamStore`.
///
/// Ordering: messages published by one caller to one channel arrive in publish order.
public protocol PubSub: Sendable {
    /// Publishes `payload` to every current subscriber of `channel`, on every node.
    func publish(_ channel: String, _ payload: [UInt8]) async throws(StoreError)
    /// Subscribes `handler` to `channel`. The returned subscription is active when this returns
    /// (a message published after that point reaches it). Handlers of one subscription run one
    /// at a time, on a thread of the store's choosing, and must not block: hop to your own loop.
    /// Several subscriptions to one channel in one process share one backend subscription.
    func subscribe(_ channel: String, handler: @escaping @Sendable (PubSubMessage) -> Void) async throws(StoreError) -> PubSubSubscription
}

public struct PubSubMessage: Sendable, Equatable {
    public var channel: String
    public var payload: [UInt8]

    public init(channel: String, payload: [UInt8]) {
        self.channel = channel
        self.payload = payload
    }
}

/// A live subscription. `cancel()` stops delivery (no handler call starts after it returns)
/// and is idempotent; the backend subscription is dropped with the last local subscriber.
public protocol PubSubSubscription: AnyObject, Sendable {
    func cancel()
}
