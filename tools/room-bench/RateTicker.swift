import BenchSupport
import HubIO

/// A fixed offered rate for one loop's devices: every millisecond it sends the events that
/// fell due since the start, one device after the other in turn. An event due while every
/// device of the loop is blocked (its windows, or the lane's budget) is skipped (counted),
/// never sent late in a burst: a burst would put queueing delay of the client's own making
/// into the latency. Loop thread only.
final class RateTicker {
    let loop: EventLoop
    let devices: [StreamingDevice]
    let counters: Counters
    let lane: SendLane
    let perSecond: Double
    private var started: UInt64 = 0
    private var due = 0
    private var next = 0
    private var running = false

    init(loop: EventLoop, devices: [StreamingDevice], counters: Counters, lane: SendLane, perSecond: Double) {
        self.loop = loop
        self.devices = devices
        self.counters = counters
        self.lane = lane
        self.perSecond = perSecond
    }

    func start() {
        guard !devices.isEmpty, perSecond > 0 else { return }
        lane.paced = true
        started = monotonicNanoseconds()
        running = true
        tick()
    }

    func stop() { running = false }

    private func tick() {
        guard running else { return }
        let elapsed = Double(monotonicNanoseconds() &- started) / 1e9
        let target = Int(elapsed * perSecond)
        while due < target {
            due += 1
            var tried = 0
            while tried < devices.count && !lane.send(devices[next]) {
                next = (next + 1) % devices.count
                tried += 1
            }
            if tried == devices.count {
                counters.bump(.skipped)
            } else {
                next = (next + 1) % devices.count
            }
        }
        loop.schedule(after: 1_000_000) { [weak self] in self?.tick() }
    }
}
