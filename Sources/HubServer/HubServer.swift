import Foundation
import HubHTTP
import HubIO
import HubStore
import HubTelemetry
import HubWebSocket
import HubWebSocketIO
import Logging
import Synchronization

/// The running hub: event loops, listeners, the HTTP application, and the shutdown sequence.
///
/// Start-up: raise the descriptor limit, start the loops, bind one listener per loop per port
/// (SO_REUSEPORT; with port 0 the first listener picks the port and the others share it).
/// Shutdown (`drain`): mark draining (so `/readyz` says 503), close listeners, ask every
/// connection to finish in-flight requests and close, then wait for the loops to empty or the
/// grace period to end, and stop the loops.
public final class HubServer: @unchecked Sendable {
    public let config: ServerConfig
    public let application: HTTPApplication
    public let readiness = Readiness()
    public let registry: MetricsRegistry
    public let logger: Logger
    private let group: EventLoopGroup
    private var listeners: [Listener] = []
    private let started = Atomic<Bool>(false)
    let dataStores: DataStores
    /// Background work with a lifecycle, started in order by `start()` and stopped in reverse
    /// by `drain()`: the data stores first, then what builds on them.
    public let services: ServiceGroup
    /// Identity: device credentials, API keys, Supabase JWTs, the guard stages.
    let identity: IdentityLayer
    /// The command queue with human approval: sessions, commands, leases, reaper, rebuild.
    let commands: CommandsLayer
    /// Rooms: histories, the node's room channels, each loop's memberships.
    let rooms: RoomsLayer
    /// The device sockets this node holds.
    public let deviceConnections: DeviceConnections
    /// The data layer the domain uses (embedded or Redis + PostgreSQL), once `start` has run.
    public var stores: Stores? { dataStores.stores }
    /// The bound ports, known after `start()`.
    public private(set) var httpPort = 0
    public private(set) var httpsPort: Int?

    public init(config: ServerConfig, logger: Logger, accessLogger: Logger? = nil) throws {
        try config.validate()
        self.config = config
        self.logger = logger
        registry = MetricsRegistry(loops: config.loops)
        group = try EventLoopGroup(count: config.loops, pinCPUs: config.pinCPUs, registry: registry)
        application = HTTPApplication(config: config, registry: registry, logger: logger, accessLogger: accessLogger ?? logger)
        application.prepareLoops(group.loops)
        services = ServiceGroup(logger: logger)
        dataStores = DataStores(config: config, loops: group.loops, registry: registry, readiness: readiness, logger: logger)
        services.add(dataStores)
        deviceConnections = DeviceConnections(loops: group.loops)
        let presence = DevicePresence(ttl: .milliseconds(Int64(config.presenceTTL * 1000)), nodeID: config.nodeID) { [dataStores] in
            dataStores.stores?.keyValue
        }
        identity = IdentityLayer(config: config, loops: group.loops, dataStores: dataStores, application: application,
                                 deviceConnections: deviceConnections, presence: presence, registry: registry, logger: logger)
        services.add(identity)
        rooms = RoomsLayer(settings: config.roomSettings, loops: group.loops, dataStores: dataStores, registry: registry, logger: logger)
        services.add(rooms)
        commands = CommandsLayer(config: config, loops: group.loops, dataStores: dataStores, rooms: rooms, application: application,
                                 connections: deviceConnections, registry: registry, logger: logger,
                                 forgetDevice: { [identity] in identity.forgetDeviceTokens($0) })
        // Not ready while the hot queue is not known to be whole (at start, and while it is
        // rebuilt after Redis lost it): devices would claim from a partial queue.
        readiness.add(Check(name: "queue") { [gate = commands.gate] in gate.isOpen })
        services.add(commands)
        OperationsEndpoints.install(on: application, readiness: readiness)
        OperationsEndpoints.installProcessCollector(on: registry)
        Self.installDomainEndpoints(application: application, identity: identity, commands: commands, rooms: rooms, presence: presence)
    }

    public var loops: [EventLoop] { group.loops }

    /// The domain's routes: admin API, customer orgs, devices, sessions and commands, the
    /// device's registration, auth and queue, and both sockets.
    private static func installDomainEndpoints(application: HTTPApplication, identity: IdentityLayer, commands: CommandsLayer,
                                               rooms: RoomsLayer, presence: DevicePresence) {
        let settings = WebSocketSettings()
        let policy = HandshakePolicy()
        AdminEndpoints.install(on: application, identity: identity)
        CustomerEndpoints.install(on: application, identity: identity, presence: presence)
        DeviceEndpoints.install(on: application, identity: identity, commands: commands, presence: presence, settings: settings, policy: policy)
        SessionEndpoints.install(on: application, layer: commands)
        CommandEndpoints.install(on: application, layer: commands, identity: identity)
        DeviceCommandEndpoints.install(on: application, layer: commands)
        CustomerSocketEndpoint.install(on: application, identity: identity, rooms: rooms, settings: settings, policy: policy)
    }

    /// Binds and starts serving; returns once every listener accepts.
    public func start() throws {
        precondition(!started.exchange(true, ordering: .relaxed), "start() called twice")
        let limits = raiseFileDescriptorLimit()
        logger.info("starting", metadata: ["version": .string(BuildInfo.version), "commit": .string(BuildInfo.gitCommit),
                                           "loops": .stringConvertible(config.loops), "nofile": .stringConvertible(limits.soft)])
        let tls = try config.tlsEnabled ? TLSContext.server(certificateChainFile: config.tlsCertificateFile!, privateKeyFile: config.tlsPrivateKeyFile!) : nil
        group.start()
        do {
            try blockingWait { [services] in try await services.startAll() }
            httpPort = try bind(port: config.port, tls: nil)
            if let tls { httpsPort = try bind(port: config.tlsPort, tls: tls) }
        } catch {
            try? blockingWait { [services] in await services.stopAll() }
            group.stopAndJoin()
            throw error
        }
        var fields: Logger.Metadata = ["host": .string(config.host), "port": .stringConvertible(httpPort)]
        if let httpsPort { fields["tls_port"] = .stringConvertible(httpsPort) }
        logger.info("listening", metadata: fields)
    }

    /// One listener per loop on `port`; returns the bound port.
    private func bind(port: Int, tls: TLSContext?) throws -> Int {
        var address = try SocketAddress.resolve(host: config.host, port: port)
        let perLoop = max(1, config.maxConnections / config.loops)
        for loop in group.loops {
            let application = self.application, logger = self.logger
            let listener = try onLoop(loop) { () throws -> Listener in
                let l = try Listener(loop: loop, address: address, maxConnections: perLoop, tlsContext: tls) { [application] channel in
                    HTTPConnection(channel: channel, app: application, context: application.loopContexts[loop.index])
                }
                l.onAcceptError = { [logger] error in logger.warning("accept failed", metadata: ["error": .string("\(error)")]) }
                try l.start()
                return l
            }
            address.port = listener.address.port
            listeners.append(listener)
        }
        return address.port
    }

    /// Loads the certificate and key again and uses them for new connections (SIGHUP).
    public func reloadTLS() {
        guard config.tlsEnabled else { return }
        do {
            let fresh = try TLSContext.server(certificateChainFile: config.tlsCertificateFile!, privateKeyFile: config.tlsPrivateKeyFile!)
            for l in listeners where l.tlsContext != nil {
                l.loop.execute { l.tlsContext = fresh }
            }
            logger.info("TLS certificate reloaded")
        } catch {
            logger.error("TLS reload failed; keeping the current certificate", metadata: ["error": .string("\(error)")])
        }
    }

    /// Graceful shutdown; returns true if every connection closed within the grace period.
    @discardableResult
    public func drain(gracePeriod: Double? = nil) -> Bool {
        let grace = gracePeriod ?? config.shutdownGracePeriod
        application.draining.store(true, ordering: .relaxed)
        logger.info("draining", metadata: ["grace_seconds": .stringConvertible(grace)])
        for l in listeners { l.loop.execute { l.close() } }
        for loop in group.loops { loop.execute { loop.forEachChannel { $0.drain() } } }
        commands.waiters.wakeAll()
        let deadline = Date().addingTimeInterval(grace)
        var clean = false
        while Date() < deadline {
            if openConnections() == 0 { clean = true; break }
            usleep(20_000)
        }
        if !clean { logger.warning("grace period over; closing remaining connections", metadata: ["open": .stringConvertible(openConnections())]) }
        stopServices()
        group.stopAndJoin()
        logger.info("stopped")
        return clean
    }

    /// Stops the services in reverse start order while the loops still run (the clients close
    /// on them): PostgreSQL sees orderly disconnects and SQLite checkpoints its WAL. Bounded: a
    /// service that does not stop costs at most 2 s of the shutdown.
    private func stopServices() {
        try? blockingWait(timeout: 2.5) { [services] in await services.stopAll(timeout: .seconds(2)) }
    }

    /// Runs async work from the control thread (start-up, shutdown: never a loop) and waits.
    private func blockingWait(timeout: Double? = nil, _ body: @escaping @Sendable () async throws -> Void) throws {
        precondition(EventLoop.current == nil, "blockingWait on an event loop would deadlock it")
        let box = Mutex<Result<Void, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let r: Result<Void, Error>
            do { try await body(); r = .success(()) } catch { r = .failure(error) }
            box.withLock { $0 = r }
            done.signal()
        }
        if let timeout {
            if done.wait(timeout: .now() + timeout) == .timedOut { logger.warning("services did not stop in time"); return }
        } else {
            done.wait()
        }
        try box.withLock { $0! }.get()
    }

    /// Stops at once (second signal, tests).
    public func stopNow() {
        group.stopAndJoin()
    }

    /// Open connections over all loops (reads each loop's count on that loop).
    public func openConnections() -> Int {
        let total = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        group.executeOnAll({ loop in total.withLock { $0 += loop.channelCount } }, done: { done.signal() })
        if done.wait(timeout: .now() + 1) == .timedOut { return Int.max }
        return total.withLock { $0 }
    }

    /// Runs `body` on `loop` and waits for its result (start-up only; never from a loop).
    private func onLoop<T>(_ loop: EventLoop, _ body: @escaping () throws -> T) throws -> T {
        let box = Mutex<Result<T, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            let r = Result { try body() }
            box.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return try box.withLock { $0! }.get()
    }
}
