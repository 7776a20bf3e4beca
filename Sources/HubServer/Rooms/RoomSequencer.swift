/// Puts one room's events back in offset order on a node.
///
/// Events of one room are appended by whichever node produced them and published after the
/// append, so two nodes' publishes can cross: offset 6 may arrive before offset 5. The stream
/// already holds 5 when 6 arrives (offsets are given out in append order, and 5's append
/// finished before 6's began), so a gap is filled by reading the stream, not by waiting.
///
/// Pure: events in, actions out; `RoomRelay` performs them.
struct RoomSequencer<Frame> {
    enum Action {
        case deliver(Frame)
        /// Read the stream after `offset` (within `epoch`) and feed the result to `filled`.
        case fill(after: UInt64, epoch: String)
    }

    /// The epoch and offset delivered last; nil before `start`.
    private(set) var epoch: String?
    private(set) var last: UInt64 = 0
    /// Frames after a gap, by offset, waiting for the fill.
    private var waiting: [UInt64: Frame] = [:]
    /// Frames that arrived before `start` (the subscription is live before the stream's
    /// position is known).
    private var early: [(offset: UInt64, epoch: String, frame: Frame)] = []
    private(set) var filling = false
    /// Past this many waiting frames the gap is given up (delivered around).
    let maxWaiting: Int

    init(maxWaiting: Int = 4096) { self.maxWaiting = maxWaiting }

    /// The stream's position when the subscription became live: everything up to it is in the
    /// stream, and subscribers read it there themselves.
    mutating func start(epoch: String, offset: UInt64) -> [Action] {
        self.epoch = epoch
        last = offset
        var actions: [Action] = []
        let held = early
        early = []
        for item in held { actions += receive(offset: item.offset, epoch: item.epoch, item.frame) }
        return actions
    }

    mutating func receive(offset: UInt64, epoch frameEpoch: String, _ frame: Frame) -> [Action] {
        guard let epoch else {
            if early.count < maxWaiting { early.append((offset, frameEpoch, frame)) }
            return []
        }
        if frameEpoch != epoch {
            // The history was lost and restarted: no order across epochs. Follow the new one
            // from this event; subscribers see the new epoch in the frame and reload.
            self.epoch = frameEpoch
            last = offset
            waiting = [:]
            filling = false
            return [.deliver(frame)]
        }
        if offset <= last { return [] }
        if offset == last + 1 && !filling {
            last = offset
            return [.deliver(frame)] + drain()
        }
        waiting[offset] = frame
        if waiting.count > maxWaiting { return giveUp() }
        if filling { return [] }
        filling = true
        return [.fill(after: last, epoch: epoch)]
    }

    /// The stream's entries after the gap (oldest first, possibly in another epoch if the
    /// stream was lost meanwhile: then they are ignored and the waiting frames delivered).
    mutating func filled(_ entries: [(offset: UInt64, frame: Frame)], epoch readEpoch: String?) -> [Action] {
        guard filling else { return [] }
        filling = false
        guard readEpoch == epoch else { return giveUp() }
        var actions: [Action] = []
        for entry in entries where entry.offset > last {
            // A fill may overlap frames that arrived meanwhile; the stream's copy wins.
            waiting[entry.offset] = nil
            last = entry.offset
            actions.append(.deliver(entry.frame))
        }
        actions += drain()
        if !waiting.isEmpty {
            // Still a hole (the read was short): deliver around it rather than stall the room.
            actions += giveUp()
        }
        return actions
    }

    /// The fill failed (the store is away): deliver what waits, in order, around the gap.
    mutating func fillFailed() -> [Action] {
        guard filling else { return [] }
        filling = false
        return giveUp()
    }

    private mutating func drain() -> [Action] {
        var actions: [Action] = []
        while let next = waiting.removeValue(forKey: last + 1) {
            last += 1
            actions.append(.deliver(next))
        }
        return actions
    }

    private mutating func giveUp() -> [Action] {
        let ordered = waiting.sorted { $0.key < $1.key }
        waiting = [:]
        filling = false
        if let newest = ordered.last { last = newest.key }
        return ordered.map { .deliver($0.value) }
    }
}
