import Foundation
import HubAuth
import HubCommands
import HubHTTP
import HubIO
import HubStore
import HubTelemetry
import Logging

/// The command queue as a service of the hub (it starts after the stores and identity, and
/// stops before them): the session, command, lease and device-stream services, the node's
/// channel for device wake-ups and other nodes' requests (`DeviceRouter`), and three periodic jobs — the queue keeper (marker check and rebuild), the
/// reaper, and the reconciler.
final class CommandsLayer: HubService, @unchecked Sendable {
    // @unchecked: every `var` is written once in `start()`, before the listeners bind, and only
    // read afterwards; `stop()` runs after the listeners closed.
    let name = "commands"
    let config: ServerConfig
    let loops: [EventLoop]
    let waiters: ClaimWaiters
    /// Per loop: orgs (their approval policy) read within the last second.
    let orgs: LoopLocal<RecentLookups<UUID, Org>>
    let gate = QueueGate()
    private let dataStores: DataStores
    private let application: HTTPApplication
    private let connections: DeviceConnections
    private let metrics: QueueMetrics
    private let logger: Logger
    /// Drops a device's tokens from this node's memories (a `revoke` from another node).
    private let forgetDevice: @Sendable (UUID) -> Void

    private(set) var context: CommandContext!
    private(set) var sessions: SessionService!
    private(set) var commands: CommandService!
    private(set) var leases: LeaseService!
    private(set) var streams: DeviceStreamService!
    private(set) var keeper: QueueKeeper!
    private(set) var router: DeviceRouter!
    private var jobs: [PeriodicService] = []
    private var nodeChannel: ChannelSubscriber?
    private let rooms: RoomsLayer

    init(config: ServerConfig, loops: [EventLoop], dataStores: DataStores, rooms: RoomsLayer, application: HTTPApplication,
         connections: DeviceConnections, registry: MetricsRegistry, logger: Logger, forgetDevice: @escaping @Sendable (UUID) -> Void) {
        self.config = config
        self.rooms = rooms
        self.forgetDevice = forgetDevice
        self.application = application
        self.loops = loops
        self.dataStores = dataStores
        self.connections = connections
        self.logger = logger
        waiters = ClaimWaiters(loops: loops)
        orgs = LoopLocal(loops: loops) { RecentLookups() }
        metrics = QueueMetrics(registry: registry)
    }

    var nodeID: String { config.nodeID }
    /// Set when the hub drains: long polls stop waiting.
    var draining: Bool { application.draining.load(ordering: .relaxed) }

    func start() async throws {
        guard let stores = dataStores.stores else { throw ConfigError(message: "commands: the stores did not start") }
        let distributed = config.redisURL != nil
        router = DeviceRouter(nodeID: config.nodeID, connections: connections, waiters: waiters, keyValue: stores.keyValue,
                              pubSub: stores.pubSub, distributed: distributed, logger: logger,
                              forgetDevice: forgetDevice)
        var configuration = CommandsConfiguration()
        configuration.sessionApprovalTTL = .milliseconds(Int64(config.sessionApprovalTTL * 1000))
        configuration.deviceQueueCap = config.deviceQueueCap
        guard let history = rooms.history else { throw ConfigError(message: "commands: the rooms did not start") }
        context = CommandContext(stores: stores, events: history, wakeups: router,
                                 configuration: configuration, metrics: metrics, gate: gate, logger: logger)
        sessions = SessionService(context: context)
        commands = CommandService(context: context)
        leases = LeaseService(context: context)
        streams = DeviceStreamService(context: context)
        keeper = QueueKeeper(context: context, nodeID: config.nodeID)

        // Rebuild (or find built) before serving, so a restarted embedded hub claims from its
        // whole queue; with Redis away, the keeper job keeps trying and claims wait.
        do { try await keeper.check() } catch {
            // Usually PostgreSQL still migrating, or a store not up yet: `/readyz` says "queue"
            // until the keeper job succeeds.
            logger.info("queue not checked yet at start; the keeper retries every 500 ms", metadata: ["error": .string("\(error)")])
        }
        if distributed {
            let router = self.router!, log = logger
            let subscriber = ChannelSubscriber(channel: DeviceRouter.channel(config.nodeID), pubSub: stores.pubSub, loop: loops[0], logger: logger) { message in
                guard let decoded = try? JSONDecoder().decode(NodeMessage.self, from: Data(message.payload)) else {
                    log.warning("unreadable node message", metadata: ["bytes": .stringConvertible(message.payload.count)])
                    return
                }
                router.deliver(decoded)
            }
            subscriber.start()
            nodeChannel = subscriber
        }
        let keeper = self.keeper!, reaper = QueueReaper(context: context)
        jobs = [
            PeriodicService(name: "queue-keeper", every: configuration.guardInterval, on: loops[0], logger: logger) { try await keeper.check() },
            PeriodicService(name: "queue-reaper", every: .milliseconds(Int64(config.reaperInterval * 1000)), on: loops[loops.count > 1 ? 1 : 0],
                            logger: logger) { try await reaper.runOnce() },
            PeriodicService(name: "queue-reconciler", every: .milliseconds(Int64(config.queueReconcileInterval * 1000)), on: loops[0],
                            logger: logger) { try await keeper.reconcile() },
        ]
        for job in jobs { try await job.start() }
    }

    /// The org (for its policy), from this loop's one-second memory or the store; 404 when
    /// missing. A policy changed through this node is forgotten at once (`forgetOrg`); through
    /// another, it applies here within a second.
    func org(_ id: UUID, on loop: EventLoop) async throws -> Org {
        let memory = orgs.forCurrent(loop)
        if let known = memory?.value(for: id, now: loop.now) { return known }
        guard let org = try await context.records.org(id: id) else { throw Problem.noSuch("org") }
        memory?.remember(id, org, now: loop.now)
        return org
    }

    func forgetOrg(_ id: UUID) {
        for loop in loops {
            loop.execute { [orgs] in orgs.forCurrent(loop)?.forget { key, _ in key == id } }
        }
    }

    func stop() async {
        for job in jobs.reversed() { await job.stop() }
        jobs = []
        await nodeChannel?.stop()
        nodeChannel = nil
    }
}
