import HubIO
import HubTelemetry
import Logging
import Synchronization

/// What a `RedisClient` in cluster mode (`redis+cluster://`) runs on: the slot map, one
/// standalone `RedisClient` per master (each with a connection per loop), and the routing of
/// every command to the master owning the slot of its first key.
///
/// - The map comes from `CLUSTER SLOTS`, asked of the seed (the URL's address) until a map is
///   known, then of any connected master; it is refreshed on `MOVED`, on a lost connection,
///   and every `refreshInterval`. Refreshes run on the first loop, at most one at a time and
///   one per `minRefreshGap`.
/// - Each loop keeps its own reference to the current map, swapped by a task on that loop
///   after a refresh, so routing a command reads no lock and no atomic.
/// - `MOVED` retries at once on the named master (and refreshes the map); `ASK` sends `ASKING`
///   then the command to the named master on the same connection, so the two leave in order;
///   `TRYAGAIN`, `CLUSTERDOWN` and a master not yet connected are retried after a short
///   pause. At most `maxAttempts` sends per command, each with the command's full timeout.
///   A connection lost with the command outstanding is not retried (Redis may have run it).
final class RedisClusterRouter: @unchecked Sendable {
    // @unchecked: `views[i]` is read and written only on `loops[i]`; the refresh state
    // (`refreshing`, `lastRefresh`, timers, `retired`) only on `loops[0]`; `latest` and
    // `listeners` sit behind mutexes (cold paths: refresh, readiness, the subscriber);
    // `closed` is atomic. Everything else is set in init.

    let loops: [EventLoop]
    /// The configuration every master's client is built from (its host and port replaced).
    let template: RedisConfiguration
    private let registry: MetricsRegistry?
    private let logger: Logger
    /// `EventLoop.index` → position in `loops` (-1: not one of ours).
    private let positionByIndex: [Int]
    private let views: [LoopView]
    private let latest = Mutex<RedisClusterTopology?>(nil)
    private let listeners = Mutex<[(RedisClusterTopology) -> Void]>([])
    private let closed = Atomic<Bool>(false)
    /// The URL's address, for `CLUSTER SLOTS` until a master of the map answers.
    private let seed: RedisClient

    private var refreshing = false
    private var refreshAgain = false
    private var lastRefresh: UInt64 = 0
    private var pendingRefresh: TimerHandle?
    private var periodicRefresh: TimerHandle?
    private var refreshRotation = 0

    static let maxAttempts = 6
    static let minRefreshGap: UInt64 = 100_000_000
    static let refreshInterval: UInt64 = 10_000_000_000
    /// How long a master's client dropped from the map stays open for commands already sent.
    static let retireDelay: UInt64 = 10_000_000_000

    /// A loop's own reference to the map.
    private final class LoopView {
        var topology: RedisClusterTopology?
    }

    init(configuration: RedisConfiguration, loops: [EventLoop], registry: MetricsRegistry?, logger: Logger) {
        var template = configuration
        template.cluster = false
        template.database = 0
        self.template = template
        self.loops = loops
        self.registry = registry
        self.logger = logger
        var positions = [Int](repeating: -1, count: (loops.map(\.index).max() ?? 0) + 1)
        for (i, l) in loops.enumerated() where positions[l.index] < 0 { positions[l.index] = i }
        positionByIndex = positions
        views = loops.map { _ in LoopView() }
        var seedConfiguration = template
        seedConfiguration.name = template.name + "-seed"
        seed = RedisClient(configuration: seedConfiguration, loop: loops[0], registry: registry, logger: logger)
    }

    // MARK: lifecycle

    func start() {
        seed.start()
        onFirstLoop { $0.refresh() }
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        seed.close()
        let topology = latest.withLock { t -> RedisClusterTopology? in
            let old = t
            t = nil
            return old
        }
        for node in topology?.nodes ?? [] { node.client.close() }
        onFirstLoop { router in
            router.pendingRefresh?.cancel()
            router.periodicRefresh?.cancel()
            router.pendingRefresh = nil
            router.periodicRefresh = nil
        }
    }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// True once a map is known and every master in it is connected.
    var isConnected: Bool {
        guard let topology = current else { return false }
        return !topology.nodes.isEmpty && topology.nodes.allSatisfy { $0.client.isConnected }
    }

    /// The latest map. Any thread (takes a lock: not for the per-command path).
    var current: RedisClusterTopology? { latest.withLock { $0 } }

    /// Calls `listener` (on the first loop) with every map installed from now on.
    func onTopologyChange(_ listener: @escaping (RedisClusterTopology) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    // MARK: routing

    enum Redirect: Equatable {
        case moved(String)
        case ask(String)

        /// `MOVED 3999 127.0.0.1:6381` / `ASK 3999 127.0.0.1:6381`; an empty host (`:6381`)
        /// means the host of the node that answered.
        init?(_ message: String, repliedBy host: String) {
            let parts = message.split(separator: " ")
            guard parts.count == 3, parts[1].allSatisfy(\.isNumber), let colon = parts[2].lastIndex(of: ":") else { return nil }
            var address = String(parts[2])
            if colon == parts[2].startIndex { address = host + address }
            switch parts[0] {
            case "MOVED": self = .moved(address)
            case "ASK": self = .ask(address)
            default: return nil
            }
        }
    }

    /// Sends `args` to the master owning its first key's slot. `completion` runs on the loop
    /// the command was routed from (the caller's, or the first loop for other threads).
    func send(_ args: [RedisArgument], timeout: UInt64?, completion: @escaping RedisCompletion) {
        if let current = EventLoop.current, current.index < positionByIndex.count {
            let p = positionByIndex[current.index]
            if p >= 0, loops[p] === current {
                route(p, args, timeout, attempt: 1, redirect: nil, completion)
                return
            }
        }
        loops[0].execute { self.route(0, args, timeout, attempt: 1, redirect: nil, completion) }
    }

    private func route(_ p: Int, _ args: [RedisArgument], _ timeout: UInt64?, attempt: Int, redirect: Redirect?,
                       _ completion: @escaping RedisCompletion) {
        guard !isClosed else {
            completion(.failure(.closed))
            return
        }
        guard let topology = views[p].topology else {
            // No map yet (start-up): the refresh is under way; wait for it, briefly.
            retryLater(p, args, timeout, attempt: attempt, error: .notConnected, completion)
            return
        }
        var target: RedisClusterTopology.Node?
        switch redirect {
        case .moved(let address), .ask(let address):
            target = topology.node(address: address)
        case nil:
            if let slot = RedisClusterSlot.ofCommand(args) {
                target = topology.node(forSlot: slot)
            } else {
                target = topology.nodes.first
            }
        }
        guard let node = target else {
            // A slot no master serves, or a redirect to a master the map does not know yet.
            requestRefresh()
            retryLater(p, args, timeout, attempt: attempt, error: .server("CLUSTERDOWN no known master for this command"), completion)
            return
        }
        if case .ask = redirect {
            // Same connection, same loop iteration: ASKING and the command leave in order.
            node.client.send(["ASKING"], timeoutNs: timeout) { _ in }
        }
        node.client.send(args, timeoutNs: timeout) { result in
            guard case .failure(let error) = result, attempt < Self.maxAttempts else {
                completion(result)
                return
            }
            switch error {
            case .server(let message):
                if let redirect = Redirect(message, repliedBy: node.host) {
                    if case .moved = redirect { self.requestRefresh() }
                    self.route(p, args, timeout, attempt: attempt + 1, redirect: redirect, completion)
                    return
                }
                if message.hasPrefix("TRYAGAIN") || message.hasPrefix("CLUSTERDOWN") {
                    self.retryLater(p, args, timeout, attempt: attempt, error: error, completion)
                    return
                }
            case .notConnected:
                // Nothing was sent: the master is (re)connecting, or gone and the map stale.
                self.requestRefresh()
                self.retryLater(p, args, timeout, attempt: attempt, error: error, completion)
                return
            case .connectionLost:
                self.requestRefresh()
            default:
                break
            }
            completion(result)
        }
    }

    /// Routes again after 10, 20, 40 … ms, or fails with `error` when the attempts are spent.
    private func retryLater(_ p: Int, _ args: [RedisArgument], _ timeout: UInt64?, attempt: Int, error: RedisError,
                            _ completion: @escaping RedisCompletion) {
        guard attempt < Self.maxAttempts else {
            completion(.failure(error))
            return
        }
        let delay = UInt64(10_000_000) << UInt64(attempt - 1)
        loops[p].schedule(after: delay) {
            self.route(p, args, timeout, attempt: attempt + 1, redirect: nil, completion)
        }
    }

    // MARK: the map

    /// Asks for a refresh soon. Any thread.
    func requestRefresh() {
        onFirstLoop { $0.refresh() }
    }

    /// First loop only.
    private func refresh() {
        guard !isClosed else { return }
        if refreshing {
            refreshAgain = true
            return
        }
        let loop = loops[0]
        let since = loop.now &- lastRefresh
        if lastRefresh != 0 && since < Self.minRefreshGap {
            if pendingRefresh == nil {
                pendingRefresh = loop.schedule(after: Self.minRefreshGap - since) {
                    self.pendingRefresh = nil
                    self.refresh()
                }
            }
            return
        }
        refreshing = true
        let connected = (views[0].topology?.nodes ?? []).filter { $0.client.isConnected }
        let asked: (client: RedisClient, host: String)
        if connected.isEmpty {
            asked = (seed, template.host)
        } else {
            refreshRotation &+= 1
            let node = connected[refreshRotation % connected.count]
            asked = (node.client, node.host)
        }
        asked.client.send(["CLUSTER", "SLOTS"], timeoutNs: nil) { result in
            self.refreshing = false
            self.lastRefresh = loop.now
            var installed = false
            switch result {
            case .success(let reply):
                if let ranges = RedisClusterTopology.parseSlots(reply, askedHost: asked.host), !ranges.isEmpty {
                    self.install(ranges)
                    installed = true
                } else {
                    self.logger.warning("redis cluster: unusable CLUSTER SLOTS reply",
                                        metadata: ["client": "\(self.template.name)", "reply": "\(String(describing: reply).prefix(200))"])
                }
            case .failure(let error):
                self.logger.debug("redis cluster: CLUSTER SLOTS failed", metadata: ["client": "\(self.template.name)", "error": "\(error)"])
            }
            if !installed || self.refreshAgain || self.views[0].topology == nil {
                self.refreshAgain = false
                self.refresh()  // rate-limited by minRefreshGap
            }
        }
    }

    /// Builds the map for `ranges`, reusing the clients of masters already known, and makes it
    /// current on every loop. First loop only.
    private func install(_ ranges: [RedisClusterTopology.Range]) {
        let old = views[0].topology
        var nodes: [RedisClusterTopology.Node] = []
        var indexByAddress: [String: UInt16] = [:]
        var owners = [UInt16](repeating: RedisClusterTopology.unassigned, count: RedisClusterSlot.count)
        for range in ranges {
            let address = range.address
            var index = indexByAddress[address]
            if index == nil {
                let client: RedisClient
                if let known = old?.node(address: address) {
                    client = known.client
                } else {
                    var configuration = template
                    configuration.host = range.host
                    configuration.port = range.port
                    client = RedisClient(configuration: configuration, loops: loops, registry: registry, logger: logger)
                    client.start()
                    logger.debug("redis cluster: master added", metadata: ["client": "\(template.name)", "address": "\(address)"])
                }
                index = UInt16(nodes.count)
                indexByAddress[address] = index
                nodes.append(.init(address: address, host: range.host, port: range.port, client: client))
            }
            for slot in range.first...range.last { owners[slot] = index! }
        }
        let topology = RedisClusterTopology(owners: owners, nodes: nodes)
        for gone in (old?.nodes ?? []) where indexByAddress[gone.address] == nil {
            logger.notice("redis cluster: master dropped", metadata: ["client": "\(template.name)", "address": "\(gone.address)"])
            loops[0].schedule(after: Self.retireDelay) { gone.client.close() }
        }
        latest.withLock { $0 = topology }
        for (p, loop) in loops.enumerated() {
            let view = views[p]
            if p == 0 { view.topology = topology } else { loop.execute { view.topology = topology } }
        }
        if periodicRefresh == nil {
            periodicRefresh = loops[0].schedule(after: Self.refreshInterval) {
                self.periodicRefresh = nil
                self.refresh()
            }
        }
        for listener in listeners.withLock({ $0 }) { listener(topology) }
    }

    /// Client-level statistics of every master's client.
    var nodeClients: [RedisClient] { current?.nodes.map(\.client) ?? [] }

    private func onFirstLoop(_ body: @escaping (RedisClusterRouter) -> Void) {
        if loops[0].inLoop { body(self) } else { loops[0].execute { body(self) } }
    }
}
