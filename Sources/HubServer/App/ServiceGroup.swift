import Foundation
import HubIO
import Logging

/// Background work with a lifecycle: the data stores, the JWKS refresher, sweepers, and (in
/// later layers) presence and the queue reaper. Started in the order added, stopped in reverse
/// on drain, so a service can rely on everything started before it (the stores before anything
/// that reads them) for as long as it runs.
public protocol HubService: AnyObject, Sendable {
    /// For logs: `stores`, `jwks`, `token-sweeper`...
    var name: String { get }
    /// Starts the service; returns once it is serving (background loops keep running after).
    /// A throw aborts start-up: the services started before it are stopped again.
    func start() async throws
    /// Stops the service and waits for its background work to end. Must not throw; bounded by
    /// the group's stop timeout.
    func stop() async
}

/// The hub's services, in start order. Own small equivalent of swift-service-lifecycle's
/// group: the hub has its own signal handling and drain sequence, and only needs ordered start
/// and reverse stop with a bound on each stop.
public final class ServiceGroup: @unchecked Sendable {
    // @unchecked: `services` and `started` are guarded by `lock`; start and stop are called
    // from the server's control thread, never concurrently with each other.
    private let lock = NSLock()
    private var services: [any HubService] = []
    private var started: [any HubService] = []
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    /// Adds a service; it starts after every service added before it.
    public func add(_ service: any HubService) {
        lock.withLock { services.append(service) }
    }

    /// The services, in start order.
    public var all: [any HubService] { lock.withLock { services } }

    /// Starts every service not yet started, in order. On a failure, stops what this call
    /// started (in reverse) and rethrows.
    public func startAll() async throws {
        let pending = lock.withLock { services.filter { s in !started.contains { $0 === s } } }
        var startedNow: [any HubService] = []
        for service in pending {
            do {
                try await service.start()
                startedNow.append(service)
                lock.withLock { started.append(service) }
                logger.debug("service started", metadata: ["service": .string(service.name)])
            } catch {
                logger.error("service failed to start", metadata: ["service": .string(service.name), "error": .string("\(error)")])
                for s in startedNow.reversed() { await stop(s, timeout: .seconds(2)) }
                throw error
            }
        }
    }

    /// Stops every started service in reverse start order; each stop is bounded by `timeout`
    /// (a stuck service is logged and left behind, so that shutdown always ends).
    public func stopAll(timeout: Duration = .seconds(2)) async {
        let running = lock.withLock { () -> [any HubService] in
            defer { started.removeAll() }
            return started
        }
        for service in running.reversed() { await stop(service, timeout: timeout) }
    }

    private func stop(_ service: any HubService, timeout: Duration) async {
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await service.stop(); return true }
            group.addTask { try? await Task.sleep(for: timeout); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if finished {
            logger.debug("service stopped", metadata: ["service": .string(service.name)])
        } else {
            logger.warning("service did not stop in time", metadata: ["service": .string(service.name), "timeout": .string("\(timeout)")])
        }
    }
}

/// Runs `body` every `interval` on `loop` until stopped: sweepers and refreshers. The first run
/// is one interval after `start` (unless `runAtStart`). A run that throws is logged and the
/// next one happens on schedule.
public final class PeriodicService: HubService, @unchecked Sendable {
    // @unchecked: `task` is written in start/stop only, which the group never runs concurrently.
    public let name: String
    private let interval: Duration
    private let loop: EventLoop
    private let runAtStart: Bool
    private let body: @Sendable () async throws -> Void
    private let logger: Logger
    private var task: Task<Void, Never>?

    public init(name: String, every interval: Duration, on loop: EventLoop, runAtStart: Bool = false, logger: Logger,
                _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.loop = loop
        self.runAtStart = runAtStart
        self.body = body
        self.logger = logger
    }

    public func start() async throws {
        let interval = self.interval, body = self.body, logger = self.logger, name = self.name, runAtStart = self.runAtStart
        task = Task(executorPreference: loop) {
            var first = true
            while !Task.isCancelled {
                if !(first && runAtStart) {
                    do { try await Task.sleep(for: interval) } catch { return }
                }
                first = false
                do { try await body() } catch {
                    logger.warning("periodic service run failed", metadata: ["service": .string(name), "error": .string("\(error)")])
                }
            }
        }
    }

    public func stop() async {
        task?.cancel()
        await task?.value
        task = nil
    }
}
