import Foundation

/// A dependency the hub needs to serve (Redis, PostgreSQL). `/readyz` is 200 only when every
/// registered check passes and the server is not draining, so a load balancer stops sending
/// traffic to a node that cannot serve it.
public protocol ReadinessCheck: AnyObject, Sendable {
    /// Short name shown in `/readyz` (`redis`, `postgres`).
    var name: String { get }
    /// Current health; must not block (report the last known state).
    func isReady() -> Bool
}

/// The set of checks, registered at start-up.
public final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var checks: [ReadinessCheck] = []

    public init() {}

    public func add(_ check: ReadinessCheck) {
        lock.lock(); defer { lock.unlock() }
        checks.append(check)
    }

    /// Each check's name and state.
    public func snapshot() -> [(name: String, ready: Bool)] {
        lock.lock()
        let current = checks
        lock.unlock()
        return current.map { ($0.name, $0.isReady()) }
    }
}
