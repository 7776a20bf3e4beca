import Foundation
import HubIO
import HubStore
import HubTelemetry
import Logging

/// The stores as a service of the hub: the first to start and the last to stop. It picks the
/// backend from the configuration (Redis + PostgreSQL when both URLs are given, otherwise the
/// embedded store in `--data-dir`), which `HubStore.StoreBackend` builds, and registers each
/// dependency with `/readyz`.
final class DataStores: HubService, @unchecked Sendable {
    // @unchecked: `backend` is written once by `start()`, which the service group runs before
    // any request can read it, and only read afterwards.
    let name = "stores"
    private(set) var backend: StoreBackend?
    /// The store interfaces the domain uses; nil before `start`.
    var stores: Stores? { backend?.stores }

    private let config: ServerConfig
    private let loops: [EventLoop]
    private let registry: MetricsRegistry
    private let readiness: Readiness
    private let logger: Logger

    init(config: ServerConfig, loops: [EventLoop], registry: MetricsRegistry, readiness: Readiness, logger: Logger) {
        self.config = config
        self.loops = loops
        self.registry = registry
        self.readiness = readiness
        self.logger = logger
    }

    func start() async throws {
        let configuration: StoreBackendConfiguration
        if let redisURL = config.redisURL, let postgresURL = config.postgresURL {
            configuration = .networked(redisURL: redisURL, postgresURL: postgresURL)
        } else {
            configuration = .embedded(directory: config.dataDirectory)
        }
        let backend: StoreBackend
        do {
            backend = try await StoreBackend.start(configuration, loops: loops, registry: registry, logger: logger)
        } catch {
            throw ConfigError(message: error.description)
        }
        for check in backend.health { readiness.add(Check(name: check.name, check.isReady)) }
        self.backend = backend
    }

    func stop() async {
        await backend?.close()
    }
}

/// A readiness check from a closure.
final class Check: ReadinessCheck, @unchecked Sendable {
    // @unchecked: immutable; the probe is itself safe to call from any thread.
    let name: String
    private let probe: () -> Bool
    init(name: String, _ probe: @escaping () -> Bool) {
        self.name = name
        self.probe = probe
    }
    func isReady() -> Bool { probe() }
}
