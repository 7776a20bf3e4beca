import HubIO
import HubTelemetry
import Logging

/// One pub/sub message as delivered to a `RedisSubscriber`'s handler.
public struct RedisMessage: Sendable, Hashable {
    /// The channel it was published to.
    public var channel: String
    /// The pattern that matched, for messages received through `psubscribe`.
    public var pattern: String?
    /// The published bytes, unchanged.
    public var payload: [UInt8]
}

/// Pub/sub on a connection of its own (a subscribed RESP2 connection can run nothing else).
///
/// The subscriber keeps the *wanted* channels and patterns, and the connection follows: every
/// `subscribe`/`unsubscribe` updates the wanted set and, when connected, is sent at once; after a
/// reconnect everything wanted is subscribed again, so a Redis restart costs the messages
/// published while it was down and nothing else. Messages are delivered on the loop, in order.
///
///     let sub = RedisSubscriber(configuration: config, loop: loop) { message in ... }
///     sub.start()
///     try await sub.subscribe(["room:7"])
public final class RedisSubscriber: @unchecked Sendable, RedisChannelSubscriber {
    // @unchecked: every mutable field is touched only on `loop` (public methods hop onto it);
    // `core` is loop-confined too, except its atomic `isReady`.

    /// The loop messages are delivered on.
    public let loop: EventLoop
    let core: RedisConnectionCore
    private let onMessage: (RedisMessage) -> Void
    /// Sharded pub/sub (`SSUBSCRIBE`, Redis 7): used per shard by `RedisClusterSubscriber`.
    /// Channels only, no patterns (Redis has no sharded pattern subscribe).
    let sharded: Bool
    /// Sharded mode: the server dropped a channel we still want (its name; its slot moved to
    /// another shard), or refused a subscribe (`MOVED`: nil). Loop thread.
    var onShardChange: ((String?) -> Void)?

    /// What the owner wants, kept across reconnects.
    private var wantedChannels: Set<String> = []
    private var wantedPatterns: Set<String> = []
    /// What the server has confirmed on the current connection.
    private var activeChannels: Set<String> = []
    private var activePatterns: Set<String> = []
    private var waiters: [Waiter] = []

    /// Someone waiting for subscriptions to be confirmed.
    private struct Waiter {
        var channels: Set<String>
        var patterns: Set<String>
        let completion: (Result<Void, RedisError>) -> Void
    }

    /// `onMessage` runs on `loop` for every message of a subscribed channel or pattern.
    public convenience init(configuration: RedisConfiguration, loop: EventLoop, registry: MetricsRegistry? = nil,
                            logger: Logger = Logger(label: "devicehub.redis.pubsub"), onMessage: @escaping (RedisMessage) -> Void) {
        self.init(configuration: configuration, loop: loop, sharded: false, registry: registry, logger: logger, onMessage: onMessage)
    }

    init(configuration: RedisConfiguration, loop: EventLoop, sharded: Bool, registry: MetricsRegistry? = nil,
         logger: Logger = Logger(label: "devicehub.redis.pubsub"), onMessage: @escaping (RedisMessage) -> Void) {
        self.sharded = sharded
        var configuration = configuration
        configuration.cluster = false
        if configuration.name == "redis" { configuration.name = "redis-pubsub" }
        // Pub/sub is database-independent; skipping SELECT keeps the handshake to AUTH.
        configuration.database = 0
        self.loop = loop
        self.onMessage = onMessage
        core = RedisConnectionCore(configuration: configuration, loop: loop, registry: registry, logger: logger)
        core.rejectsPubSubCommands = false
        // Weak: a push may be in delivery on the loop while the owner drops the subscriber.
        core.onReady = { [weak self] in self?.resubscribe() }
        core.onLost = { [weak self] in self?.connectionLost() }
        core.onPush = { [weak self] in self?.handlePush($0) }
    }

    deinit {
        // As RedisClient: close on the loop, whichever thread dropped the last reference.
        let core = self.core
        loop.execute { core.close() }
    }

    /// Starts connecting, and keeps reconnecting until `close()`. Any thread.
    public func start() { onLoop { $0.core.start() } }

    /// Closes the connection for good. Any thread.
    public func close() {
        onLoop { subscriber in
            subscriber.core.close()
            subscriber.failWaiters(.closed)
        }
    }

    /// True while connected (subscriptions may still be being confirmed). Any thread.
    public var isConnected: Bool { core.isReady }

    // MARK: subscribing

    /// Subscribes to `channels` now if connected and after every reconnect until unsubscribed.
    /// `completion` (on the loop) reports when the server has confirmed all of them; it fails
    /// with `.notConnected` at once while disconnected (the channels are still kept, and
    /// subscribed on reconnect). Any thread.
    public func subscribe(_ channels: [String], completion: ((Result<Void, RedisError>) -> Void)? = nil) {
        change(channels: channels, patterns: [], completion: completion)
    }

    /// Like `subscribe`, for glob patterns (`PSUBSCRIBE`).
    public func psubscribe(_ patterns: [String], completion: ((Result<Void, RedisError>) -> Void)? = nil) {
        change(channels: [], patterns: patterns, completion: completion)
    }

    /// Subscribes and waits for the server's confirmation.
    public func subscribe(_ channels: [String]) async throws(RedisError) {
        let result: Result<Void, RedisError> = await withCheckedContinuation { c in subscribe(channels) { c.resume(returning: $0) } }
        try result.get()
    }

    /// Pattern-subscribes and waits for the server's confirmation.
    public func psubscribe(_ patterns: [String]) async throws(RedisError) {
        let result: Result<Void, RedisError> = await withCheckedContinuation { c in psubscribe(patterns) { c.resume(returning: $0) } }
        try result.get()
    }

    /// Stops receiving `channels` (now, and after reconnects). Any thread.
    public func unsubscribe(_ channels: [String]) {
        onLoop { s in
            let leaving = channels.filter { s.wantedChannels.remove($0) != nil }
            if !leaving.isEmpty { s.sendUnsubscribe(leaving) }
        }
    }

    /// Stops receiving messages matched by `patterns`. Any thread.
    public func punsubscribe(_ patterns: [String]) {
        onLoop { s in
            let leaving = patterns.filter { s.wantedPatterns.remove($0) != nil }
            if !leaving.isEmpty { _ = s.core.sendPush(["PUNSUBSCRIBE"] + leaving.map { RedisArgument($0) }) }
        }
    }

    /// The channels and patterns the server has confirmed on the current connection (empty
    /// while disconnected). Hops onto the loop.
    public func activeSubscriptions() async -> (channels: Set<String>, patterns: Set<String>) {
        await withCheckedContinuation { c in
            onLoop { s in c.resume(returning: (s.activeChannels, s.activePatterns)) }
        }
    }

    private func change(channels: [String], patterns: [String], completion: ((Result<Void, RedisError>) -> Void)?) {
        onLoop { s in
            if s.sharded && !patterns.isEmpty {
                completion?(.failure(.invalidCommand("sharded pub/sub has no pattern subscriptions")))
                return
            }
            s.wantedChannels.formUnion(channels)
            s.wantedPatterns.formUnion(patterns)
            guard s.core.state == .ready else {
                completion?(.failure(.notConnected))
                return
            }
            if let completion {
                s.waiters.append(Waiter(channels: Set(channels), patterns: Set(patterns), completion: completion))
            }
            if !channels.isEmpty { s.sendSubscribe(channels[...]) }
            if !patterns.isEmpty { _ = s.core.sendPush(["PSUBSCRIBE"] + patterns.map { RedisArgument($0) }) }
            s.resolveWaiters()
        }
    }

    // MARK: connection events

    /// Ready after a (re)connect: subscribe everything wanted, in chunks so that ten thousand
    /// channels do not make one giant command.
    private func resubscribe() {
        for chunk in Self.chunks(Array(wantedChannels)) { sendSubscribe(chunk) }
        for chunk in Self.chunks(Array(wantedPatterns)) { _ = core.sendPush(["PSUBSCRIBE"] + chunk.map { RedisArgument($0) }) }
    }

    /// `SUBSCRIBE`, or in sharded mode `SUBSCRIBE` then one `SSUBSCRIBE` per channel (the
    /// channels of one `SSUBSCRIBE` must share a slot).
    ///
    /// Why the classic `SUBSCRIBE` in sharded mode: hiredis 0.14 predates sharded pub/sub. It
    /// hands a message that arrives outside any command's reply to a callback only when the
    /// connection is flagged subscribed and the message's channel is in its table of
    /// `SUBSCRIBE`d channels, and it asserts (aborting the process) on such a message
    /// otherwise. Subscribing each channel classically too, first, sets both; it costs nothing
    /// more, since on a cluster the hub publishes only with `SPUBLISH` (and `handlePush` ignores
    /// classic deliveries in sharded mode).
    private func sendSubscribe(_ channels: ArraySlice<String>) {
        _ = core.sendPush(["SUBSCRIBE"] + channels.map { RedisArgument($0) })
        guard sharded else { return }
        for channel in channels { _ = core.sendPush(["SSUBSCRIBE", RedisArgument(channel)]) }
    }

    /// The reverse of `sendSubscribe`; in sharded mode `SUNSUBSCRIBE` first, so no shard
    /// message can arrive once hiredis has forgotten the channel.
    private func sendUnsubscribe(_ channels: [String]) {
        if sharded {
            for channel in channels { _ = core.sendPush(["SUNSUBSCRIBE", RedisArgument(channel)]) }
        }
        _ = core.sendPush(["UNSUBSCRIBE"] + channels.map { RedisArgument($0) })
    }

    private func connectionLost() {
        activeChannels.removeAll()
        activePatterns.removeAll()
        failWaiters(.connectionLost)
    }

    private func failWaiters(_ error: RedisError) {
        let failed = waiters
        waiters.removeAll()
        for w in failed { w.completion(.failure(error)) }
    }

    private func resolveWaiters() {
        guard !waiters.isEmpty else { return }
        var done: [(Result<Void, RedisError>) -> Void] = []
        waiters.removeAll { w in
            let confirmed = w.channels.isSubset(of: activeChannels) && w.patterns.isSubset(of: activePatterns)
            if confirmed { done.append(w.completion) }
            return confirmed
        }
        for completion in done { completion(.success(())) }
    }

    /// Pushes are RESP2 arrays: `[message, channel, payload]`, `[pmessage, pattern, channel,
    /// payload]`, `[subscribe|unsubscribe|psubscribe|punsubscribe, name, count]`.
    private func handlePush(_ push: RedisValue) {
        if sharded, case .error = push {
            // An SSUBSCRIBE answered `MOVED`: the map the channel was placed by is stale.
            onShardChange?(nil)
            return
        }
        guard case .array(let parts) = push, parts.count >= 3, let kind = parts[0].text, let name = parts[1].text else { return }
        switch kind.lowercased() {
        case "message" where !sharded, "smessage" where sharded:
            if let payload = parts[2].bytes { onMessage(RedisMessage(channel: name, pattern: nil, payload: payload)) }
        case "pmessage":
            if parts.count >= 4, let channel = parts[2].text, let payload = parts[3].bytes {
                onMessage(RedisMessage(channel: channel, pattern: name, payload: payload))
            }
        case "subscribe" where !sharded, "ssubscribe" where sharded:
            activeChannels.insert(name)
            resolveWaiters()
        case "psubscribe":
            activePatterns.insert(name)
            resolveWaiters()
        case "unsubscribe" where !sharded:
            activeChannels.remove(name)
        case "sunsubscribe":
            activeChannels.remove(name)
            // Redis drops shard channels whose slot left this shard; still wanted means moved.
            if wantedChannels.contains(name) { onShardChange?(name) }
        case "punsubscribe":
            activePatterns.remove(name)
        default:
            break
        }
    }

    static func chunks(_ names: [String], size: Int = 512) -> [ArraySlice<String>] {
        stride(from: 0, to: names.count, by: size).map { names[$0..<min($0 + size, names.count)] }
    }

    private func onLoop(_ body: @escaping (RedisSubscriber) -> Void) {
        if loop.inLoop { body(self) } else { loop.execute { body(self) } }
    }
}
