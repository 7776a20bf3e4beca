import HubIO
import HubTelemetry

/// The queue's Prometheus series. Counted on the calling loop's shard (domain work runs on the
/// loops; anything else pays for one shared atomic).
public struct QueueMetrics: Sendable {
    let claims: Counter
    let claimLatency: Histogram
    let leaseExpiries: Counter
    let redeliveries: Counter
    let deadLetters: Counter
    let succeeded: Counter
    let failed: Counter
    let approvalWait: Histogram
    let rebuilds: Counter
    let enqueueRepairs: Counter

    public init(registry: MetricsRegistry) {
        claims = registry.counter("devicehub_queue_claims_total", help: "Deliveries handed to devices (one per leased command).")
        claimLatency = registry.histogram("devicehub_queue_claim_seconds", help: "Time to answer a claim that leased at least one command (without long-poll waiting).")
        leaseExpiries = registry.counter("devicehub_queue_lease_expiries_total", help: "Leases that lapsed and put their command back in line.")
        redeliveries = registry.counter("devicehub_queue_redeliveries_total", help: "Deliveries after the first (attempt > 1).")
        deadLetters = registry.counter("devicehub_queue_dead_letters_total", help: "Commands dead-lettered after max_attempts deliveries.")
        succeeded = registry.counter("devicehub_queue_results_total", help: "Results recorded, by status.", labels: [("status", "succeeded")])
        failed = registry.counter("devicehub_queue_results_total", help: "Results recorded, by status.", labels: [("status", "failed")])
        approvalWait = registry.histogram("devicehub_approval_wait_seconds", help: "From a session's or command's request to its approval or rejection.",
                                          buckets: [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 86400])
        rebuilds = registry.counter("devicehub_queue_rebuilds_total", help: "Times this node rebuilt the hot queue from the records.")
        enqueueRepairs = registry.counter("devicehub_queue_enqueue_repairs_total", help: "Accepted commands put into the hot queue by the reconciler (their first enqueue failed or was lost).")
    }

    static var shard: Int? { EventLoop.current?.index }
}
