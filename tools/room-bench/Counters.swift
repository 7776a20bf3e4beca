import Synchronization

/// Counters of one client loop: written by that loop only (a plain load and store, no locked
/// instruction on the hot path), read by the main thread between phases and around the window.
final class Counters: Sendable {
    enum Name: Int, CaseIterable {
        case devicesReady       // device socket open, heartbeat acknowledged, command claimed
        case portalsReady       // portal socket open and its subscribe acknowledged
        case sent               // event messages the devices wrote
        case accepted           // ... acknowledged by the hub (the event entered its room)
        case refused            // ... refused with rate_limited (dropped by the hub, resendable)
        case unavailable        // ... refused with unavailable (the hub's store wait queue was full)
        case deliveries         // bench events received by portals
        case deliveryBytes      // their payload bytes
        case otherEvents        // room events that are not the devices' (command.status at the claim)
        case lagged             // lagged notices (a portal fell behind and lost logs)
        case offsetJumps        // an event whose offset is not the previous one + 1
        case skipped            // fixed rate: events due while every device of the loop was window-blocked
        case finished           // devices whose command's result was acknowledged
    }
    /// One counter (an `Atomic` cannot be an array element itself: it is not copyable).
    final class Cell: Sendable { let value = Atomic<Int>(0) }
    private let cells: [Cell] = Name.allCases.map { _ in Cell() }

    @inline(__always) func bump(_ name: Name, by n: Int = 1) {
        let a = cells[name.rawValue]
        a.value.store(a.value.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    func load(_ name: Name) -> Int { cells[name.rawValue].value.load(ordering: .relaxed) }
}

extension Array where Element == Counters {
    func total(_ name: Counters.Name) -> Int { reduce(0) { $0 + $1.load(name) } }
}
