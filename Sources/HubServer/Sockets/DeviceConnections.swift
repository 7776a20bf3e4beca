import Foundation
import HubIO
import HubWebSocket
import HubWebSocketIO
import Synchronization

/// The device sockets this node holds, by device id, one table per loop (each touched only by
/// its loop's thread, so registering and looking up take no lock).
///
/// A device that connects twice keeps the newer socket: registering closes an older one of the
/// same device on any loop of this node with `replaced` (4509); an older one on another node is
/// closed by that node on a `replace` message (`DeviceSocket`, `DeviceRouter`). Disabling a
/// device or rotating its secret closes its socket wherever it is: here directly, on the node
/// its presence names through a `revoke` message, which calls `close(deviceID:code:)`.
public final class DeviceConnections: @unchecked Sendable {
    // @unchecked: `tables[i]` is touched only on loop i (every access goes through
    // `loop.execute` or runs on that loop); `sequence` is atomic.
    private let loops: [EventLoop]
    private let tables: [Table]
    private let sequence = Atomic<UInt64>(0)

    final class Table {
        var byDevice: [UUID: Entry] = [:]
    }

    struct Entry {
        let connection: WebSocketConnection
        let sequence: UInt64
    }

    public init(loops: [EventLoop]) {
        self.loops = loops
        tables = loops.map { _ in Table() }
    }

    /// Registers `connection` (on its own loop) as the device's current socket and closes any
    /// older one of the same device on this node. Returns the registration's sequence number,
    /// which `unregister` needs. Loop thread only.
    func register(_ deviceID: UUID, _ connection: WebSocketConnection) -> UInt64 {
        let loop = connection.channel.loop
        let seq = sequence.add(1, ordering: .relaxed).newValue
        let table = tables[loop.index]
        if let old = table.byDevice[deviceID] { old.connection.close(.replaced, reason: "replaced by a newer connection") }
        table.byDevice[deviceID] = Entry(connection: connection, sequence: seq)
        for other in loops where other !== loop {
            let otherTable = tables[other.index]
            other.execute {
                if let old = otherTable.byDevice[deviceID], old.sequence < seq {
                    otherTable.byDevice[deviceID] = nil
                    old.connection.close(.replaced, reason: "replaced by a newer connection")
                }
            }
        }
        return seq
    }

    /// Forgets the device's socket if it is still the one registered with `sequence`. Loop
    /// thread only.
    func unregister(_ deviceID: UUID, sequence seq: UInt64, loop: EventLoop) {
        let table = tables[loop.index]
        if table.byDevice[deviceID]?.sequence == seq { table.byDevice[deviceID] = nil }
    }

    /// Closes the device's socket on whichever loop of this node holds it. Any thread.
    public func close(deviceID: UUID, code: WebSocketCloseCode, reason: String) {
        for loop in loops {
            let table = tables[loop.index]
            loop.execute {
                if let entry = table.byDevice.removeValue(forKey: deviceID) { entry.connection.close(code, reason: reason) }
            }
        }
    }

    /// Sends a text message to the device's socket on whichever loop of this node holds it
    /// (nothing when none does). Any thread.
    public func send(deviceID: UUID, text: String) {
        for loop in loops {
            let table = tables[loop.index]
            loop.execute {
                table.byDevice[deviceID]?.connection.send(text: text)
            }
        }
    }

    /// How many device sockets this node holds (reads each loop's table on that loop).
    public func count() async -> Int {
        var total = 0
        for loop in loops {
            let table = tables[loop.index]
            total += await withCheckedContinuation { c in loop.execute { c.resume(returning: table.byDevice.count) } }
        }
        return total
    }
}
