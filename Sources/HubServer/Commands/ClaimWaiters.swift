import Foundation
import HubIO

/// Long polls waiting for a device's commands, one table per loop (touched only by its loop's
/// thread: no lock). A claim that found nothing registers a waiter *before* it looks, so a
/// wake-up that arrives between the look and the wait is not lost.
final class ClaimWaiters: @unchecked Sendable {
    // @unchecked: `tables[i]` is touched only on loop i (`wake` hops with `loop.execute`).
    private let loops: [EventLoop]
    private let tables: [Table]

    final class Table {
        var byDevice: [UUID: [Waiter]] = [:]
    }

    /// One long poll. Loop thread only.
    final class Waiter {
        fileprivate var continuation: CheckedContinuation<Void, Never>?
        fileprivate var fired = false
        fileprivate var timer: TimerHandle?

        fileprivate func fire() {
            fired = true
            timer?.cancel()
            timer = nil
            continuation?.resume()
            continuation = nil
        }
    }

    init(loops: [EventLoop]) {
        self.loops = loops
        tables = loops.map { _ in Table() }
    }

    /// Registers a waiter for `deviceID` on `loop` (the caller's). Loop thread only.
    func register(_ deviceID: UUID, on loop: EventLoop) -> Waiter {
        let waiter = Waiter()
        tables[loop.index].byDevice[deviceID, default: []].append(waiter)
        return waiter
    }

    /// Suspends until the waiter is woken or `nanoseconds` passed. Loop thread only; the
    /// caller runs on `loop` (its task prefers it), so the continuation resumes there.
    func wait(_ waiter: Waiter, on loop: EventLoop, nanoseconds: UInt64) async {
        if waiter.fired { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if waiter.fired { c.resume(); return }
            waiter.continuation = c
            waiter.timer = loop.schedule(after: nanoseconds) { [weak waiter] in waiter?.fire() }
        }
    }

    /// Removes the waiter (the long poll ended). Loop thread only.
    func unregister(_ deviceID: UUID, _ waiter: Waiter, on loop: EventLoop) {
        let table = tables[loop.index]
        guard var list = table.byDevice[deviceID] else { return }
        list.removeAll { $0 === waiter }
        table.byDevice[deviceID] = list.isEmpty ? nil : list
        waiter.timer?.cancel()
    }

    /// Wakes every long poll of the device on this node. Any thread.
    func wake(_ deviceID: UUID) {
        for loop in loops {
            let table = tables[loop.index]
            loop.execute {
                guard let list = table.byDevice[deviceID] else { return }
                for waiter in list { waiter.fire() }
            }
        }
    }

    /// Wakes every long poll on this node (drain: they answer what they have now instead of
    /// holding the shutdown for up to 20 s). Any thread.
    func wakeAll() {
        for loop in loops {
            let table = tables[loop.index]
            loop.execute {
                for list in table.byDevice.values { for waiter in list { waiter.fire() } }
            }
        }
    }
}
