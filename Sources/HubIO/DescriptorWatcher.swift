import CHubShims

/// Readiness callbacks for a descriptor the loop does not own: the sockets of hiredis and
/// libpq, which open, read, write and close them themselves. The watcher only tells them when
/// to act; it never reads, writes or closes the descriptor.
///
/// Interest changes are idempotent (hiredis calls `addRead` repeatedly), and cost an
/// `epoll_ctl` only when the interest set really changes. Loop thread only.
public final class DescriptorWatcher: EventHandler {
    public let fd: Int32
    public unowned(unsafe) let loop: EventLoop
    private let onReadable: () -> Void
    private let onWritable: () -> Void
    private var reading = false
    private var writing = false
    private var registered = false

    public init(fd: Int32, loop: EventLoop, onReadable: @escaping () -> Void, onWritable: @escaping () -> Void) {
        self.fd = fd
        self.loop = loop
        self.onReadable = onReadable
        self.onWritable = onWritable
    }

    public func setInterest(read: Bool, write: Bool) {
        guard read != reading || write != writing else { return }
        reading = read
        writing = write
        var events: UInt32 = 0
        if read { events |= hub_EPOLLIN() }
        if write { events |= hub_EPOLLOUT() }
        if events == 0 {
            if registered { loop.deregister(self); registered = false }
        } else if registered {
            loop.modify(self, events: events)
        } else {
            do {
                try loop.register(self, events: events)
                registered = true
            } catch {
                // A closed descriptor: report it as readable so the owner's read sees the error.
                loop.execute { [weak self] in self?.onReadable() }
            }
        }
    }

    public var isReading: Bool { reading }
    public var isWriting: Bool { writing }

    /// Stops watching (the owner is about to close the descriptor).
    public func stop() {
        setInterest(read: false, write: false)
    }

    public func handleEvents(_ events: UInt32) {
        // Errors and hang-ups surface through the owner's next read or write.
        if events & (hub_EPOLLIN() | hub_EPOLLERR() | hub_EPOLLHUP()) != 0, reading { onReadable() }
        if events & (hub_EPOLLOUT() | hub_EPOLLERR()) != 0, writing { onWritable() }
    }
}
