import HubIO
import HubTelemetry

/// The rooms layer's Prometheus series.
final class RoomMetrics: Sendable {
    let delivered: LoopCounter
    let slowConsumers: LoopCounter
    let droppedLogs: LoopCounter
    let appended: Counter
    let appendFailures: Counter

    init(registry: MetricsRegistry) {
        delivered = LoopCounter(registry.counter("devicehub_room_deliveries_total", help: "Room events written to subscribers (replays included)."))
        slowConsumers = LoopCounter(registry.counter("devicehub_room_slow_consumers_total", help: "Subscribers closed with slow_consumer (4008)."))
        droppedLogs = LoopCounter(registry.counter("devicehub_room_dropped_logs_total", help: "execution.log events a lagging subscriber lost (it got a lagged notice)."))
        appended = registry.counter("devicehub_room_events_appended_total", help: "Room events appended to a room's history and published.")
        appendFailures = registry.counter("devicehub_room_event_failures_total", help: "Room events not kept (the history store failed or the writer was behind).")
    }

    /// A subscriber's lifetime drop count moved to `total`; adds the difference.
    func noteDropped(_ delta: Int) {
        if delta > 0 { droppedLogs.increment(by: delta) }
    }
}

/// A counter incremented from loop threads, each on its own shard (no shared cache line).
struct LoopCounter: Sendable {
    let counter: Counter
    init(_ counter: Counter) { self.counter = counter }
    @inline(__always) func increment(by n: Int = 1) { counter.increment(by: n, shard: EventLoop.current?.index) }
    var value: Int { counter.value }
}
