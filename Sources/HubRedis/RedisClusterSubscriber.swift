import HubIO
import HubTelemetry
import Logging

/// What a pub/sub user needs of a subscriber, so it can run on one Redis (`RedisSubscriber`)
/// or on a cluster (`RedisClusterSubscriber`) alike.
public protocol RedisChannelSubscriber: AnyObject, Sendable {
    /// Starts connecting, and keeps reconnecting until `close()`. Any thread.
    func start()
    /// Closes for good. Any thread.
    func close()
    /// Subscribes now if connected and after every reconnect until unsubscribed; `completion`
    /// reports the server's confirmation, or fails (`.notConnected`) while disconnected, the
    /// channels being kept and subscribed on reconnect.
    func subscribe(_ channels: [String], completion: ((Result<Void, RedisError>) -> Void)?)
    /// Subscribes and waits for the confirmation.
    func subscribe(_ channels: [String]) async throws(RedisError)
    /// Stops receiving `channels`.
    func unsubscribe(_ channels: [String])
    /// What the server has confirmed on the current connection(s).
    func activeSubscriptions() async -> (channels: Set<String>, patterns: Set<String>)
}

/// Sharded pub/sub on a Redis Cluster (`SSUBSCRIBE`, Redis 7): a message published with
/// `SPUBLISH` stays on the shard owning its channel's slot, so a node receives only the
/// channels it subscribed, from the shards that own them, and no message crosses the cluster
/// bus to every node (what classic `PUBLISH` does on a cluster).
///
/// One `RedisSubscriber` in sharded mode per master, all on `loop`; each channel is subscribed
/// on the master that owns its slot in the cluster client's current map. Each shard's
/// subscriber resubscribes its channels after a reconnect by itself; when the map changes (a
/// refresh after `MOVED`, a failover) or a shard drops a channel whose slot left it, the
/// channels are moved to their new owners.
public final class RedisClusterSubscriber: @unchecked Sendable, RedisChannelSubscriber {
    // @unchecked: `shards`, `home`, `wanted`, `dropped` and `closed` are touched only on `loop`
    // (every public method hops onto it, and the shards' callbacks run there); `router` and
    // `onMessage` are set in init.

    public let loop: EventLoop
    private let router: RedisClusterRouter
    private let onMessage: (RedisMessage) -> Void
    private let registry: MetricsRegistry?
    private let logger: Logger
    /// One sharded subscriber per master address.
    private var shards: [String: RedisSubscriber] = [:]
    /// The master each wanted channel is subscribed on.
    private var home: [String: String] = [:]
    private var wanted: Set<String> = []
    /// Wanted channels a shard dropped (`sunsubscribe` from the server): subscribed again on
    /// their owner at the next map, whether or not the map changed.
    private var dropped: Set<String> = []
    private var closed = false

    /// `client` must be a cluster-mode client (`redis+cluster://`); its slot map places the
    /// channels. `onMessage` runs on `loop`.
    public init(client: RedisClient, loop: EventLoop, registry: MetricsRegistry? = nil,
                logger: Logger = Logger(label: "devicehub.redis.pubsub"), onMessage: @escaping (RedisMessage) -> Void) {
        guard let router = client.cluster else { preconditionFailure("RedisClusterSubscriber needs a cluster-mode RedisClient") }
        self.router = router
        self.loop = loop
        self.onMessage = onMessage
        self.registry = registry
        self.logger = logger
        router.onTopologyChange { [weak self] topology in self?.onLoop { $0.rehome(topology) } }
    }

    deinit {
        let shards = self.shards
        loop.execute { for s in shards.values { s.close() } }
    }

    public func start() {
        onLoop { s in
            if let topology = s.router.current { s.rehome(topology) }
        }
    }

    public func close() {
        onLoop { s in
            s.closed = true
            for shard in s.shards.values { shard.close() }
            s.shards.removeAll()
            s.home.removeAll()
        }
    }

    public func subscribe(_ channels: [String], completion: ((Result<Void, RedisError>) -> Void)?) {
        onLoop { s in
            guard !s.closed else {
                completion?(.failure(.closed))
                return
            }
            s.wanted.formUnion(channels)
            guard let topology = s.router.current else {
                // Kept: subscribed when the first map arrives (`rehome`).
                completion?(.failure(.notConnected))
                return
            }
            var groups: [String: [String]] = [:]
            for channel in channels {
                guard let node = topology.node(forSlot: RedisClusterSlot.of(channel)) else {
                    completion?(.failure(.notConnected))
                    return
                }
                groups[node.address, default: []].append(channel)
                s.place(channel, on: node)
            }
            guard let completion else {
                for (address, group) in groups { s.shards[address]?.subscribe(group, completion: nil) }
                return
            }
            // Confirmed once every shard confirmed its part; the first failure answers.
            var left = groups.count
            var answered = false
            for (address, group) in groups {
                guard let shard = s.shards[address] else { continue }
                shard.subscribe(group) { result in
                    guard !answered else { return }
                    left -= 1
                    if case .failure = result {
                        answered = true
                        completion(result)
                    } else if left == 0 {
                        answered = true
                        completion(.success(()))
                    }
                }
            }
        }
    }

    public func subscribe(_ channels: [String]) async throws(RedisError) {
        let result: Result<Void, RedisError> = await withCheckedContinuation { c in subscribe(channels) { c.resume(returning: $0) } }
        try result.get()
    }

    public func unsubscribe(_ channels: [String]) {
        onLoop { s in
            for channel in channels {
                s.wanted.remove(channel)
                if let address = s.home.removeValue(forKey: channel) { s.shards[address]?.unsubscribe([channel]) }
            }
        }
    }

    /// Channels confirmed on the shard they are placed on.
    public func activeSubscriptions() async -> (channels: Set<String>, patterns: Set<String>) {
        let (shards, home): ([String: RedisSubscriber], [String: String]) = await withCheckedContinuation { c in
            onLoop { s in c.resume(returning: (s.shards, s.home)) }
        }
        var active: Set<String> = []
        for (address, shard) in shards {
            for channel in await shard.activeSubscriptions().channels where home[channel] == address { active.insert(channel) }
        }
        return (active, [])
    }

    // MARK: placement

    /// Records `channel` as living on `node`, moving it off its previous shard. Loop thread.
    private func place(_ channel: String, on node: RedisClusterTopology.Node) {
        if let previous = home[channel], previous != node.address { shards[previous]?.unsubscribe([channel]) }
        home[channel] = node.address
        if shards[node.address] == nil {
            var configuration = router.template
            configuration.host = node.host
            configuration.port = node.port
            if configuration.name == "redis" { configuration.name = "redis-pubsub" }
            let shard = RedisSubscriber(configuration: configuration, loop: loop, sharded: true, registry: registry, logger: logger,
                                        onMessage: onMessage)
            // A channel dropped by its shard, or a MOVED: the map is stale; the refresh that
            // follows calls `rehome`.
            shard.onShardChange = { [weak self, router] channel in
                if let channel, let self, self.wanted.contains(channel) { self.dropped.insert(channel) }
                router.requestRefresh()
            }
            shards[node.address] = shard
            shard.start()
        }
    }

    /// A new map: every wanted channel goes to the shard now owning its slot; shards of masters
    /// that left the map close. Loop thread.
    private func rehome(_ topology: RedisClusterTopology) {
        guard !closed else { return }
        var moved: [String: [String]] = [:]
        for channel in wanted {
            guard let node = topology.node(forSlot: RedisClusterSlot.of(channel)) else { continue }
            if home[channel] != node.address || shards[node.address] == nil || dropped.contains(channel) {
                place(channel, on: node)
                moved[node.address, default: []].append(channel)
            }
        }
        dropped.removeAll()
        for (address, channels) in moved { shards[address]?.subscribe(channels, completion: nil) }
        for (address, shard) in shards where topology.node(address: address) == nil && !home.values.contains(address) {
            shard.close()
            shards[address] = nil
        }
    }

    private func onLoop(_ body: @escaping (RedisClusterSubscriber) -> Void) {
        if loop.inLoop { body(self) } else { loop.execute { body(self) } }
    }
}
