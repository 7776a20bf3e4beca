import Foundation
import HubCommands

/// One device socket's log pipeline, as a state machine the socket drives (loop thread only):
/// log batches are written one at a time in arrival order, so a command's lines reach the store
/// and its room in the order the device sent them; a few may wait, more are refused. It also
/// remembers which commands this socket found held, so most batches cost no record read, and
/// keeps the socket's line budget.
struct DeviceStreamState {
    struct Batch {
        var id: String?
        var commandID: UUID
        var lines: [DeviceStreamService.Line]
    }

    enum Arrival: Equatable {
        /// Write it now.
        case start
        /// Another batch is being written; this one follows.
        case queued
        /// Answer with this error and drop the batch.
        case refuse(code: String, message: String)
    }

    /// Batches that may wait behind the one being written.
    static let maxQueued = 16
    /// Commands remembered as held; past it the memory starts over (one record read each).
    static let maxHeld = 64
    /// How long a command found held is trusted before its record is read again: a command that
    /// ended (or was canceled) stops taking lines within this time.
    static let heldFor: UInt64 = 10_000_000_000
    /// Lines (and status reports) per second a socket may send (`--device-log-rate`), and the
    /// burst above that (four seconds' worth).
    let linesPerSecond: Int
    var burst: Int { linesPerSecond * 4 }

    private var waiting: [Batch] = []
    private(set) var writing = false
    private var held: [UUID: (command: DeviceStreamService.HeldCommand, checkedAt: UInt64)] = [:]
    private var tokens: Double
    private var refilledAt: UInt64?

    init(linesPerSecond: Int = 500) {
        self.linesPerSecond = linesPerSecond
        tokens = Double(linesPerSecond * 4)
    }

    /// A batch arrived at `now` (loop nanoseconds).
    mutating func arrive(_ batch: Batch, now: UInt64) -> Arrival {
        guard spend(batch.lines.count, now: now) else {
            return .refuse(code: "rate_limited", message: "at most \(linesPerSecond) log lines per second")
        }
        if !writing {
            writing = true
            return .start
        }
        guard waiting.count < Self.maxQueued else {
            return .refuse(code: "rate_limited", message: "at most \(Self.maxQueued) log batches waiting")
        }
        waiting.append(batch)
        return .queued
    }

    /// The batch being written is done: the next one to write, if any.
    mutating func finished() -> Batch? {
        guard !waiting.isEmpty else {
            writing = false
            return nil
        }
        return waiting.removeFirst()
    }

    /// Takes `n` from the line budget; false (and nothing taken) when it does not hold `n`.
    mutating func spend(_ n: Int, now: UInt64) -> Bool {
        if let at = refilledAt {
            tokens = min(Double(burst), tokens + Double(now &- at) / 1e9 * Double(linesPerSecond))
        }
        refilledAt = now
        guard tokens >= Double(n) else { return false }
        tokens -= Double(n)
        return true
    }

    func held(_ commandID: UUID, now: UInt64) -> DeviceStreamService.HeldCommand? {
        guard let entry = held[commandID], now &- entry.checkedAt < Self.heldFor else { return nil }
        return entry.command
    }

    mutating func remember(_ command: DeviceStreamService.HeldCommand, now: UInt64) {
        if held.count >= Self.maxHeld, held[command.commandID] == nil { held.removeAll(keepingCapacity: true) }
        held[command.commandID] = (command, now)
    }

    /// The command is no longer held (its result or release went through this socket, or a
    /// write found it ended).
    mutating func forget(_ commandID: UUID) {
        held[commandID] = nil
    }
}
