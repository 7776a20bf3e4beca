import Synchronization

/// Whether this node may claim from the hot queue: false from start-up until the queue is known
/// to be built (its marker is present), and again from the moment the marker is found missing
/// (Redis flushed, or restarted without persistence) until the rebuild finished. Claims while
/// closed answer empty (a long poll keeps waiting), so nothing is handed out from a queue that
/// is only partly rebuilt.
public final class QueueGate: Sendable {
    private let open = Atomic<Bool>(false)

    public init(open: Bool = false) {
        self.open.store(open, ordering: .relaxed)
    }

    public var isOpen: Bool { open.load(ordering: .acquiring) }

    func set(_ value: Bool) { open.store(value, ordering: .releasing) }
}
