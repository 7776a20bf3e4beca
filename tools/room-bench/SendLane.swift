/// The devices of one client loop share two budgets: event messages unanswered by the hub,
/// and events sent but not yet received by their room's pacer portal.
///
/// Per device the hub takes at most 32 queue messages in flight (16 waiting log messages), but
/// every one of them holds the hub's PostgreSQL pool (a progress is an event row and a read;
/// a log line a row), whose wait queue is bounded (256 callers, then `unavailable`): 1,000
/// devices × 32 would measure refusals. And an acknowledged event still waits in the hub's
/// history writer (append, then publish; at most 10,000 per writer lane, then dropped) before
/// any portal sees it: 1,000 devices × a per-device delivery window would measure the drops.
/// So "as fast as the hub takes it" is a window over all devices — the budgets — and within
/// them each device's own windows (`StreamingDevice`). Devices that could send while a budget
/// is spent wait in turn (first come, first served), so none starves. Loop thread only.
final class SendLane {
    let inFlightBudget: Int
    let undeliveredBudget: Int
    /// Fixed-rate runs: only the `RateTicker` sends; answers and deliveries wake nobody.
    var paced = false
    private(set) var inFlight = 0
    private(set) var undelivered = 0
    private var waiting: [StreamingDevice] = []
    private var head = 0

    init(inFlight: Int, undelivered: Int) {
        inFlightBudget = max(1, inFlight)
        undeliveredBudget = max(1, undelivered)
    }

    private var open: Bool { inFlight < inFlightBudget && undelivered < undeliveredBudget }

    /// `device` may be able to send: it sends while its windows and the budgets allow, and
    /// waits its turn when only a budget stops it.
    func offer(_ device: StreamingDevice) {
        guard !paced else { return }
        while open && device.canSend { sendOne(device) }
        if device.canSend && !device.waiting {
            device.waiting = true
            waiting.append(device)
        }
    }

    /// Fixed rate: one event from `device` if its windows and the budgets allow.
    func send(_ device: StreamingDevice) -> Bool {
        guard open && device.canSend else { return false }
        sendOne(device)
        return true
    }

    private func sendOne(_ device: StreamingDevice) {
        let events = device.sendEvent()
        inFlight += 1
        undelivered += events
    }

    /// One event message (of `events` events) was answered; `entered`: acknowledged (they will
    /// reach the portals), not refused (they never will).
    func answered(entered: Bool, events: Int = 1) {
        inFlight -= 1
        if !entered { undelivered -= events }
        wake()
    }

    /// A pacer portal received one event of a device of this loop.
    func delivered() {
        undelivered -= 1
        wake()
    }

    private func wake() {
        guard !paced else { return }
        while open && head < waiting.count {
            let device = waiting[head]
            head += 1
            device.waiting = false
            offer(device)
        }
        if head > 1024 && head * 2 >= waiting.count {
            waiting.removeFirst(head)
            head = 0
        }
    }
}
