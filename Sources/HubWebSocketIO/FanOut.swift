import HubIO
import HubWebSocket

/// The fan-out primitive: one message encoded once into a shared frame, queued by reference on
/// every subscriber's connection, and written by each connection's loop at the end of the
/// iteration, many frames per `sendmsg`. The cost per recipient is a reference-count increment
/// and an entry in its outbound queue, not a copy or a syscall.
///
/// A `FanOutGroup` belongs to one loop (its members are that loop's connections); a
/// `Broadcaster` holds one group per loop and hands each the same frame.
public final class FanOutGroup {
    public unowned(unsafe) let loop: EventLoop
    private var members: [WebSocketConnection] = []
    /// Position of each member in `members`, so removal is O(1) and a connection can belong to
    /// any number of groups (rooms).
    private var positions: [ObjectIdentifier: Int] = [:]

    public init(loop: EventLoop) { self.loop = loop }

    public var count: Int { members.count }

    /// Adds a connection of this loop (loop thread only); adding twice is a no-op.
    public func add(_ ws: WebSocketConnection) {
        let id = ObjectIdentifier(ws)
        guard positions[id] == nil else { return }
        positions[id] = members.count
        members.append(ws)
    }

    public func remove(_ ws: WebSocketConnection) {
        guard let slot = positions.removeValue(forKey: ObjectIdentifier(ws)) else { return }
        let last = members.removeLast()
        if slot < members.count {
            members[slot] = last
            positions[ObjectIdentifier(last)] = slot
        }
    }

    /// Queues `frame` on every member; returns how many took it. Members over their hard
    /// limit are closed (4008) by their own `send` and dropped from the group.
    @discardableResult
    public func publish(_ frame: SharedBytes) -> Int {
        var delivered = 0
        var i = 0
        while i < members.count {
            let ws = members[i]
            if ws.send(shared: frame) == .dropped {
                remove(ws)
                continue
            }
            delivered += 1
            i += 1
        }
        return delivered
    }
}

/// One `FanOutGroup` per loop; `publish` encodes once and gives every loop the same bytes.
public final class Broadcaster: @unchecked Sendable {
    public let groups: [FanOutGroup]

    public init(loops: [EventLoop]) {
        groups = loops.map { FanOutGroup(loop: $0) }
    }

    public func group(for loop: EventLoop) -> FanOutGroup { groups[loop.index] }

    /// Encodes `payload` once as an uncompressed server frame and publishes it everywhere.
    /// (Uncompressed frames are valid on every connection, deflate negotiated or not.)
    public func publish(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, from current: EventLoop?) {
        let frame = SharedBytes(WebSocketWriter.encodeShared(opcode, payload: payload, compress: nil))
        publish(frame, from: current)
    }

    public func publish(_ frame: SharedBytes, from current: EventLoop?) {
        for group in groups {
            if let current, group.loop === current {
                group.publish(frame)
            } else {
                group.loop.execute { group.publish(frame) }
            }
        }
    }
}
