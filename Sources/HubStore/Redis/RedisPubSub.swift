import HubIO
import HubRedis
import Synchronization

/// `PubSub` across nodes through Redis, on channels `<namespace>pubsub:<channel>`.
///
/// On a Redis Cluster (a cluster-mode client) it uses sharded pub/sub: `SPUBLISH` to the shard
/// owning the channel's slot, and a `RedisClusterSubscriber` with a connection per shard, so a
/// message travels only to the shard of its channel and the nodes subscribed there.
///
/// Publishing is a `PUBLISH` on the shared command client. Receiving needs a connection of its
/// own: the store creates and owns a `RedisSubscriber` (started at init, closed by `close()`),
/// which resubscribes by itself after a reconnect. Local subscriptions of one channel share one
/// Redis subscription: the first sends `SUBSCRIBE`, the last one's `cancel` sends `UNSUBSCRIBE`.
/// Both are issued under the router's lock, so a subscribe racing a last cancel always ends
/// subscribed. Messages arrive on the subscriber's loop and are handed to each subscription's
/// `PubSubMailbox`, which calls the handler off the loop, one at a time, in order.
public final class RedisPubSub: PubSub {
    private let client: RedisClient
    private let namespace: RedisNamespace
    private let subscriber: any RedisChannelSubscriber
    /// `PUBLISH`, or `SPUBLISH` on a cluster.
    private let publishCommand: RedisArgument
    private let router: PubSubRouter
    private let closed = Atomic<Bool>(false)
    /// How long `subscribe` keeps retrying while the subscriber connection is down (at start-up
    /// it is not connected yet) before it fails with `unavailable`.
    private let subscribeDeadline: Duration

    /// `subscriberConfiguration` is for the subscriber's own connection (usually the client's
    /// configuration); it runs on `loop`.
    public init(client: RedisClient, subscriberConfiguration: RedisConfiguration, loop: EventLoop, namespace: RedisNamespace) {
        self.client = client
        self.namespace = namespace
        let router = PubSubRouter()
        self.router = router
        subscribeDeadline = max(subscriberConfiguration.connectTimeout, .seconds(1))
        if client.isCluster {
            publishCommand = "SPUBLISH"
            subscriber = RedisClusterSubscriber(client: client, loop: loop) { message in router.deliver(message.channel, message.payload) }
        } else {
            publishCommand = "PUBLISH"
            subscriber = RedisSubscriber(configuration: subscriberConfiguration, loop: loop) { message in
                router.deliver(message.channel, message.payload)
            }
        }
        subscriber.start()
    }

    /// Closes the subscriber connection for good: no message is received afterwards, and
    /// `subscribe` fails with `unavailable`. Publishing still works (it uses the client).
    public func close() {
        closed.store(true, ordering: .releasing)
        subscriber.close()
    }

    private func channelKey(_ channel: String) -> String { namespace.key("pubsub", channel) }

    public func publish(_ channel: String, _ payload: [UInt8]) async throws(StoreError) {
        try StoreLimits.check(key: channel)
        try StoreLimits.check(value: payload)
        let reply = try await client.storeSend([publishCommand, RedisArgument(channelKey(channel)), RedisArgument(bytes: payload)])
        guard case .integer = reply else { throw .backend("\(publishCommand) answered \(reply)") }
    }

    public func subscribe(_ channel: String, handler: @escaping @Sendable (PubSubMessage) -> Void) async throws(StoreError) -> PubSubSubscription {
        try StoreLimits.check(key: channel)
        guard !closed.load(ordering: .acquiring) else { throw .unavailable("pub/sub closed") }
        let key = channelKey(channel)
        let mailbox = PubSubMailbox(handler: handler)
        let router = self.router
        let subscriber = self.subscriber
        // Register first, so that nothing published after the confirmation is missed; the first
        // local subscriber's SUBSCRIBE goes out under the router's lock.
        let id = router.makeID()
        let first: Result<Void, RedisError> = await withCheckedContinuation { continuation in
            router.add(key, id: id, channel: channel, mailbox) { isFirst in
                if isFirst {
                    subscriber.subscribe([key]) { continuation.resume(returning: $0) }
                } else {
                    continuation.resume(returning: .success(()))
                }
            }
        }
        let detach: @Sendable () -> Void = { router.remove(key, id: id) { subscriber.unsubscribe([key]) } }
        do throws(RedisError) {
            // `notConnected`/`connectionLost` leave the channel wanted: `confirm` waits for the
            // (re)connect. A later subscriber also waits there until the channel is confirmed
            // on the current connection.
            if case .failure(let error) = first, error != .notConnected, error != .connectionLost { throw error }
            try await confirm(key)
        } catch {
            mailbox.cancel()
            detach()
            throw StoreError(error)
        }
        return RoutedSubscription(mailbox: mailbox, detach: detach)
    }

    /// Returns once Redis has confirmed `key` on the subscriber's current connection, sending
    /// `SUBSCRIBE` again when it is not (redundant subscribes are no-ops in Redis); retries while
    /// disconnected until `subscribeDeadline`.
    private func confirm(_ key: String) async throws(RedisError) {
        let deadline = ContinuousClock.now + subscribeDeadline
        while true {
            if closed.load(ordering: .acquiring) { throw .closed }
            if await subscriber.activeSubscriptions().channels.contains(key) { return }
            do {
                try await subscriber.subscribe([key])
                return
            } catch {
                guard error == .notConnected || error == .connectionLost, ContinuousClock.now < deadline else { throw error }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Local subscriptions of `channel` (tests).
    func subscriberCount(_ channel: String) -> Int { router.subscriberCount(channelKey(channel)) }
}
