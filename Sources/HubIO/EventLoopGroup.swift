import CHubShims
import Foundation
import HubTelemetry

/// A fixed set of event loops, one thread each (by default one per core).
public final class EventLoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private var threads: [pthread_t] = []
    private let pinCPUs: Bool
    private var nextIndex = 0

    public init(count: Int, pinCPUs: Bool = false, registry: MetricsRegistry?) throws {
        precondition(count > 0)
        let metrics = registry.map { LoopMetrics(registry: $0) }
        loops = try (0..<count).map { try EventLoop(index: $0, metrics: metrics) }
        self.pinCPUs = pinCPUs
    }

    /// Starts one thread per loop.
    public func start() {
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        for loop in loops {
            let pin = pinCPUs ? loop.index % max(cpus, 1) : -1
            let box = Unmanaged.passRetained(ThreadStart(loop: loop, cpu: pin))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let start = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
                if start.cpu >= 0 { _ = hub_pin_to_cpu(Int32(start.cpu)) }
                start.loop.run()
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
    }

    /// Stops every loop and waits for its thread.
    public func stopAndJoin() {
        for loop in loops { loop.stop() }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    /// Round-robin choice for outgoing connections (any thread; approximate under races).
    public func next() -> EventLoop {
        nextIndex = (nextIndex + 1) % loops.count
        return loops[nextIndex]
    }

    /// Runs `body` on every loop and calls `done` (on an arbitrary loop) once all have run.
    public func executeOnAll(_ body: @escaping (EventLoop) -> Void, done: (() -> Void)? = nil) {
        let remaining = Counter(loops.count)
        for loop in loops {
            loop.execute {
                body(loop)
                if remaining.decrement() == 0 { done?() }
            }
        }
    }

    private final class ThreadStart {
        let loop: EventLoop
        let cpu: Int
        init(loop: EventLoop, cpu: Int) { self.loop = loop; self.cpu = cpu }
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int
        init(_ v: Int) { value = v }
        func decrement() -> Int { lock.lock(); defer { lock.unlock() }; value -= 1; return value }
    }
}
