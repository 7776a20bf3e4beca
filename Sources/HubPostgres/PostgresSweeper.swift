import HubIO

/// One coarse deadline sweep per loop: every `interval` it asks each PostgreSQL connection on
/// the loop to check its deadlines (connect, statement, cancel grace), then runs an optional
/// extra step (the pool's maintenance). One repeating timer per loop instead of one timer per
/// statement keeps the loop's timer heap tiny; deadlines are late by at most `interval`.
///
/// Loop thread only (created anywhere, then `start()` on the loop).
final class PostgresSweeper {
    let loop: EventLoop
    private let interval: UInt64
    private var connections: [PostgresConnection] = []
    private var timer: TimerHandle?
    private var stopped = false
    /// Extra work after each sweep (the pool's waiter timeouts and reconnects).
    var onSweep: (() -> Void)?

    init(loop: EventLoop, interval: Duration) {
        self.loop = loop
        self.interval = max(interval.nanoseconds, 1_000_000)
    }

    func start() {
        guard timer == nil, !stopped else { return }
        schedule()
    }

    func stop() {
        stopped = true
        timer?.cancel()
        timer = nil
        onSweep = nil
    }

    func add(_ connection: PostgresConnection) {
        connections.append(connection)
    }

    func remove(_ connection: PostgresConnection) {
        // Pools hold tens of connections per loop: a linear search is cheaper than bookkeeping.
        if let i = connections.firstIndex(where: { $0 === connection }) {
            connections.swapAt(i, connections.count - 1)
            connections.removeLast()
        }
    }

    /// Connections currently on this loop (for shutdown).
    var all: [PostgresConnection] { connections }

    private func schedule() {
        timer = loop.schedule(after: interval) { [weak self] in self?.fire() }
    }

    private func fire() {
        guard !stopped else { return }
        let now = loop.now
        // Ticking may close a connection, which removes it from `connections`: iterate a copy.
        for c in connections { c.tick(now: now) }
        onSweep?()
        if !stopped { schedule() }
    }
}
