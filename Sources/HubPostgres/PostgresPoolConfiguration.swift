import HubTelemetry

/// The pool's limits, each with its default and why.
public struct PostgresPoolConfiguration: Sendable {
    /// How each connection connects and times out.
    public var connection: PostgresConfiguration

    /// Most connections open at once. PostgreSQL spends a process per connection, and on a
    /// small server a few busy connections saturate it: more only queue inside the server.
    /// Default 10 (see docs/postgres.md for the measurement behind it).
    public var maxConnections: Int = 10

    /// Connections kept open even when idle, so the first request after a quiet period does not
    /// pay for a connect, and so a lost server is noticed (and `isHealthy` turns false) without
    /// traffic. Default 1.
    public var minConnections: Int = 1

    /// Callers allowed to wait for a connection when all are busy. Beyond this a call fails at
    /// once with `.poolExhausted` (load shedding: a queue longer than a few hundred means the
    /// database is the bottleneck and waiting only adds latency). Default 256.
    public var maxWaiters: Int = 256

    /// Longest wait for a free connection before `.poolExhausted`. Default 2 s.
    public var acquireTimeout: Duration = .seconds(2)

    /// An idle connection unused for this long is checked with `SELECT 1` before it is trusted
    /// again (catches connections a NAT or proxy dropped silently). Default 30 s.
    public var healthCheckInterval: Duration = .seconds(30)

    /// Reconnect backoff after failures: the n-th consecutive failure waits a random time in
    /// [d/2, d] with d = min(max, base × 2^(n-1)) ("equal jitter": spread out, never zero), so
    /// many hub processes do not reconnect in lock step after a database restart.
    /// Defaults 100 ms and 5 s.
    public var reconnectBackoffBase: Duration = .milliseconds(100)
    public var reconnectBackoffMax: Duration = .seconds(5)

    public init(connection: PostgresConfiguration) {
        self.connection = connection
    }

    public init(url: String) {
        self.connection = PostgresConfiguration(url: url)
    }

    /// The backoff before retry `failures` (≥ 1), jittered.
    func backoff(failures: Int) -> UInt64 {
        let base = reconnectBackoffBase.nanoseconds
        let cap = reconnectBackoffMax.nanoseconds
        let shift = UInt64(min(max(failures - 1, 0), 30))
        let d = min(cap, base << shift)
        return d / 2 + UInt64.random(in: 0...max(d / 2, 1))
    }
}

/// The pool's metrics, registered once per pool in a `MetricsRegistry`.
///
/// Updated with the shared (atomic) shard, not the loop's: the pool can run on loops of a
/// different group than the registry was sized for, and a query costs tens of microseconds,
/// so an atomic add is noise here.
public struct PostgresPoolMetrics: Sendable {
    public let inUse: Gauge
    public let idle: Gauge
    public let waiters: Gauge
    public let up: Gauge
    public let queryLatency: Histogram
    public let reconnects: Counter
    let errors: [String: Counter]

    public init(registry: MetricsRegistry) {
        inUse = registry.gauge("devicehub_postgres_connections", help: "PostgreSQL pool connections by state.", labels: [("state", "in_use")])
        idle = registry.gauge("devicehub_postgres_connections", help: "PostgreSQL pool connections by state.", labels: [("state", "idle")])
        waiters = registry.gauge("devicehub_postgres_waiters", help: "Callers waiting for a PostgreSQL connection.")
        up = registry.gauge("devicehub_postgres_up", help: "1 when the PostgreSQL pool is healthy (connected), else 0.")
        queryLatency = registry.histogram("devicehub_postgres_query_seconds", help: "PostgreSQL statement latency through the pool, waiting for a connection included.")
        reconnects = registry.counter("devicehub_postgres_reconnects_total", help: "Connection attempts made to replace a lost connection or retry a failed one.")
        var errors: [String: Counter] = [:]
        for kind in ["connection", "server", "timeout", "pool_exhausted", "decoding", "invalid_parameter"] {
            errors[kind] = registry.counter("devicehub_postgres_errors_total", help: "PostgreSQL errors by kind.", labels: [("kind", kind)])
        }
        self.errors = errors
    }

    func record(_ error: PostgresError) {
        errors[error.kind]?.increment(shard: nil)
    }
}
