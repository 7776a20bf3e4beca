import CHubShims
import Foundation
import HubTelemetry
import Synchronization

/// Something registered with a loop's epoll set. The loop looks handlers up by descriptor.
public protocol EventHandler: AnyObject {
    var fd: Int32 { get }
    func handleEvents(_ events: UInt32)
}

/// What a loop reports about itself (all sharded by the loop's index).
public struct LoopMetrics {
    public var iterationSeconds: Histogram
    public var connectionsOpen: Gauge
    public var connectionsAccepted: Counter
    public var connectionsRejected: Counter
    public var acceptErrors: Counter

    public init(registry: MetricsRegistry) {
        iterationSeconds = registry.histogram("devicehub_loop_iteration_seconds", help: "Time an event loop spends handling one batch of events (idle waits excluded).",
                                              buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1])
        connectionsOpen = registry.gauge("devicehub_connections_open", help: "Open client connections.")
        connectionsAccepted = registry.counter("devicehub_connections_accepted_total", help: "Connections accepted.")
        connectionsRejected = registry.counter("devicehub_connections_rejected_total", help: "Connections closed at accept because the connection limit was reached.")
        acceptErrors = registry.counter("devicehub_accept_errors_total", help: "accept(2) failures, EMFILE and ENFILE included.")
    }
}

/// One thread's epoll loop. It owns its connections outright (shared nothing): every channel,
/// timer and buffer registered here is touched only by this loop's thread. Other threads talk
/// to it only through `execute`, a task queue woken by an eventfd.
///
/// One iteration: wait → dispatch readiness → run queued tasks → run due timers → sweep
/// connection deadlines (coarse, every `sweepInterval`) → flush every channel that has output
/// (one `sendmsg` each, `EPOLLOUT` only for leftovers) → close what was marked for closing.
/// Closing last keeps descriptors from being reused while events for them are still in the batch.
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private var handlers: [EventHandler?] = []

    /// Channels with output to flush at the end of this iteration.
    var flushList: [Channel] = []
    /// Channels to close at the end of this iteration.
    var closeList: [Channel] = []
    /// Every open channel, for the deadline sweep.
    private(set) var channels: [Channel] = []

    private let taskLock = NSLock()
    private var tasks: [() -> Void] = []
    private var runningTasks: [() -> Void] = []
    /// Swift concurrency jobs (this loop is their executor): kept apart from `tasks` so that
    /// resuming a task costs no closure allocation.
    private var jobs: [UnownedJob] = []
    private var runningJobs: [UnownedJob] = []
    private let wakePending = Atomic<Bool>(false)
    private var timers = TimerHeap()

    /// Monotonic time of the current iteration (ns). Read this instead of the clock.
    public private(set) var now: UInt64 = monotonicNanoseconds()
    /// How often channel deadlines are checked. Deadlines are coarse by this much.
    public var sweepInterval: UInt64 = 250_000_000
    private var nextSweep: UInt64 = 0

    /// One receive buffer per loop, not per connection: handlers must consume what they are
    /// given before returning.
    public let receiveBuffer: UnsafeMutableRawBufferPointer
    /// Scratch output for encoders when a channel must transform output (TLS).
    var scratch: [UInt8] = []

    private let running = Atomic<Bool>(true)
    private var threadID: pthread_t?
    public let metrics: LoopMetrics?

    public init(index: Int, metrics: LoopMetrics?, receiveBufferSize: Int = 64 * 1024) throws {
        self.index = index
        self.metrics = metrics
        epfd = try syscallChecked("epoll_create1") { hub_epoll_create() }
        wakeFD = try syscallChecked("eventfd") { hub_eventfd() }
        receiveBuffer = .allocate(byteCount: receiveBufferSize, alignment: 16)
        try syscallChecked("epoll_ctl") { hub_epoll_ctl(epfd, hub_EPOLL_CTL_ADD(), wakeFD, hub_EPOLLIN(), UInt64(wakeFD)) }
    }

    deinit {
        receiveBuffer.deallocate()
        closeDescriptor(wakeFD)
        closeDescriptor(epfd)
    }

    /// True on this loop's own thread.
    public var inLoop: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    // MARK: registration

    func register(_ handler: EventHandler, events: UInt32) throws {
        let fd = Int(handler.fd)
        if fd >= handlers.count { handlers.append(contentsOf: repeatElement(nil, count: max(fd + 1 - handlers.count, handlers.count))) }
        handlers[fd] = handler
        try syscallChecked("epoll_ctl") { hub_epoll_ctl(epfd, hub_EPOLL_CTL_ADD(), handler.fd, events, UInt64(handler.fd)) }
    }

    func modify(_ handler: EventHandler, events: UInt32) {
        _ = try? syscallChecked("epoll_ctl") { hub_epoll_ctl(epfd, hub_EPOLL_CTL_MOD(), handler.fd, events, UInt64(handler.fd)) }
    }

    func deregister(_ handler: EventHandler) {
        let fd = Int(handler.fd)
        if fd < handlers.count, handlers[fd] === handler { handlers[fd] = nil }
        _ = hub_epoll_ctl(epfd, hub_EPOLL_CTL_DEL(), handler.fd, 0, 0)
    }

    func addChannel(_ channel: Channel) {
        channel.sweepSlot = channels.count
        channels.append(channel)
        metrics?.connectionsOpen.add(1, shard: index)
    }

    func removeChannel(_ channel: Channel) {
        let slot = channel.sweepSlot
        guard slot >= 0, slot < channels.count, channels[slot] === channel else { return }
        let last = channels.removeLast()
        if slot < channels.count {
            channels[slot] = last
            last.sweepSlot = slot
        }
        channel.sweepSlot = -1
        metrics?.connectionsOpen.add(-1, shard: index)
    }

    /// Open channels on this loop.
    public var channelCount: Int { channels.count }

    /// Calls `body` for every open channel (e.g. to start draining).
    public func forEachChannel(_ body: (Channel) -> Void) {
        for c in channels { body(c) }
    }

    // MARK: tasks and timers

    /// Runs `task` on this loop's thread, soon. Safe from any thread.
    public func execute(_ task: @escaping () -> Void) {
        taskLock.lock()
        tasks.append(task)
        taskLock.unlock()
        if !inLoop && !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Runs `action` on this loop after `delay` nanoseconds. Loop thread only.
    @discardableResult
    public func schedule(after delay: UInt64, _ action: @escaping () -> Void) -> TimerHandle {
        let handle = TimerHandle(deadline: now &+ delay, action: action)
        timers.push(handle)
        return handle
    }

    /// Queues a Swift concurrency job (the executor's `enqueue`). Safe from any thread; from the
    /// loop itself it is an append, with no wake-up.
    func enqueueJob(_ job: UnownedJob) {
        taskLock.lock()
        jobs.append(job)
        taskLock.unlock()
        if !inLoop && !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// The loop whose thread this is, or nil off the loops. One thread-local load.
    public static var current: EventLoop? {
        guard let raw = hub_current_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    // MARK: running

    /// Runs until `stop()`; call on the thread that is to own the loop.
    public func run() {
        threadID = pthread_self()
        // Unretained: the loop outlives its thread's run (the group joins the thread before
        // the loop can be released).
        hub_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        defer { hub_set_current_loop(nil) }
        let maxEvents = 512
        let events = UnsafeMutablePointer<hub_epoll_event>.allocate(capacity: maxEvents)
        defer { events.deallocate() }
        now = monotonicNanoseconds()
        nextSweep = now &+ sweepInterval
        while running.load(ordering: .relaxed) {
            let n = hub_epoll_wait(epfd, events, Int32(maxEvents), waitTimeoutMilliseconds())
            let start = monotonicNanoseconds()
            now = start
            if n > 0 {
                for i in 0..<Int(n) {
                    let ev = events[i]
                    let fd = Int(ev.data)
                    if fd == Int(wakeFD) {
                        var value: UInt64 = 0
                        _ = Glibc.read(wakeFD, &value, 8)
                        wakePending.store(false, ordering: .releasing)
                        continue
                    }
                    if fd < handlers.count, let handler = handlers[fd] {
                        handler.handleEvents(ev.events)
                    }
                }
            }
            runTasks()
            runTimers()
            if now >= nextSweep {
                nextSweep = now &+ sweepInterval
                sweep()
            }
            flushAndClose()
            if n > 0, let metrics {
                metrics.iterationSeconds.observe(nanoseconds: Int(monotonicNanoseconds() &- start), shard: index)
            }
        }
        // The loop is ending: close what is left so peers see a FIN, not a hang.
        for channel in channels { channel.close(.immediately) }
        flushAndClose()
    }

    /// Asks the loop to return from `run()` after the current iteration. Any thread.
    public func stop() {
        running.store(false, ordering: .relaxed)
        execute {}
    }

    private func waitTimeoutMilliseconds() -> Int32 {
        if !flushList.isEmpty || !closeList.isEmpty { return 0 }
        taskLock.lock()
        let hasTasks = !tasks.isEmpty || !jobs.isEmpty
        taskLock.unlock()
        if hasTasks { return 0 }
        let current = monotonicNanoseconds()
        var until = nextSweep
        if let t = timers.nextDeadline, t < until { until = t }
        if until <= current { return 0 }
        return Int32(min((until - current + 999_999) / 1_000_000, 60_000))
    }

    /// Runs queued closures and concurrency jobs until both queues are empty (what they
    /// enqueue runs in this iteration too, so an `await` that completes on the loop resumes
    /// without waiting for the next `epoll_wait`).
    private func runTasks() {
        while true {
            taskLock.lock()
            if tasks.isEmpty && jobs.isEmpty { taskLock.unlock(); return }
            swap(&tasks, &runningTasks)
            swap(&jobs, &runningJobs)
            taskLock.unlock()
            for task in runningTasks { task() }
            runningTasks.removeAll(keepingCapacity: true)
            if !runningJobs.isEmpty {
                let serial = asUnownedSerialExecutor(), task = asUnownedTaskExecutor()
                for job in runningJobs { job.runSynchronously(isolatedTo: serial, taskExecutor: task) }
                runningJobs.removeAll(keepingCapacity: true)
            }
        }
    }

    private func runTimers() {
        while let handle = timers.popDue(now: now) {
            if !handle.cancelled { handle.action() }
        }
    }

    private func sweep() {
        var i = 0
        // Handlers may close channels during the sweep (swap-remove), so index carefully.
        while i < channels.count {
            let channel = channels[i]
            channel.tick(now: now)
            if i < channels.count, channels[i] === channel { i += 1 }
        }
    }

    func flushAndClose() {
        // Flushing can add to the close list (write errors), closing can not add flushes.
        var i = 0
        while i < flushList.count {
            flushList[i].flushNow()
            i += 1
        }
        flushList.removeAll(keepingCapacity: true)
        if !closeList.isEmpty {
            let closing = closeList
            closeList.removeAll(keepingCapacity: true)
            for channel in closing { channel.finishClose() }
        }
    }
}

/// A one-shot timer; cancel by setting `cancelled` (the heap drops it when due).
public final class TimerHandle {
    let deadline: UInt64
    let action: () -> Void
    public var cancelled = false
    init(deadline: UInt64, action: @escaping () -> Void) {
        self.deadline = deadline
        self.action = action
    }
    public func cancel() { cancelled = true }
}

/// A binary min-heap of timers by deadline. Connection deadlines do not live here (they are
/// swept); this holds the few loop-wide timers (drain grace, backoff, command timeouts).
struct TimerHeap {
    private var items: [TimerHandle] = []

    var nextDeadline: UInt64? { items.first?.deadline }

    mutating func push(_ h: TimerHandle) {
        items.append(h)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].deadline <= items[i].deadline { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func popDue(now: UInt64) -> TimerHandle? {
        guard let first = items.first, first.deadline <= now else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].deadline < items[m].deadline { m = l }
                if r < items.count && items[r].deadline < items[m].deadline { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
