import CHubShims
import Foundation

/// The protocol logic on top of a channel (HTTP, then WebSocket after an upgrade). All calls
/// happen on the channel's loop thread.
public protocol ChannelHandler: AnyObject {
    /// The channel is registered and may write.
    func channelActive(_ channel: Channel)
    /// Plaintext arrived. The buffer belongs to the loop: consume or copy it before returning.
    /// It is mutable so that a codec can transform in place (WebSocket unmasking).
    func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer)
    /// The peer closed its side (read returned 0 or TLS close_notify).
    func channelReadEOF(_ channel: Channel)
    /// Output that had backed up (see `Channel.outboundBytes`), or that the handler asked to hear
    /// about (`Channel.wantsDrainNotice`), has been written out completely.
    func channelWritable(_ channel: Channel)
    /// The loop's coarse sweep: check deadlines against `now` (monotonic ns).
    func channelTick(_ channel: Channel, now: UInt64)
    /// The channel is closed; `error` says why when it was not an orderly close.
    func channelClosed(_ channel: Channel, error: Error?)
    /// The server is shutting down: finish what is in flight, then close (WebSockets: 1001).
    func channelDrain(_ channel: Channel)
}

extension ChannelHandler {
    public func channelActive(_ channel: Channel) {}
    public func channelReadEOF(_ channel: Channel) { channel.close(.afterFlush) }
    public func channelWritable(_ channel: Channel) {}
    public func channelTick(_ channel: Channel, now: UInt64) {}
    public func channelClosed(_ channel: Channel, error: Error?) {}
    public func channelDrain(_ channel: Channel) { channel.close(.afterFlush) }
}

/// One connected socket on one loop: non-blocking reads into the loop's buffer, an outbound
/// queue flushed once per loop iteration, optional TLS in between, and a deferred close.
public final class Channel: EventHandler {
    public enum CloseMode {
        /// Drop pending output and close at the end of this iteration.
        case immediately
        /// Stop reading, write what is queued, then close.
        case afterFlush
    }

    enum State { case active, closing, closed }

    public let fd: Int32
    /// Loops outlive their channels (a loop closes every channel before `run` returns), so the
    /// reference needs neither a retain nor `unowned`'s check.
    public unowned(unsafe) let loop: EventLoop
    public var handler: ChannelHandler!
    /// The peer's address as text (`127.0.0.1:51234`), for logs.
    public let peer: String
    /// Opaque per-connection slot for the layer above (e.g. a connection id).
    public var userTag: Int = 0

    var outbound = OutboundQueue()
    private var tls: TLSEngine?
    private var state = State.active
    private var interest: UInt32 = 0
    private var flushScheduled = false
    private var readPaused = false
    /// Set when output backed up (a write did not finish), so the handler hears when it drains.
    private var backedUp = false
    /// Set by a handler that paused its own producer (its output passed a limit): it hears
    /// `channelWritable` once the output is written out, even when the kernel took it all in one
    /// flush and nothing ever backed up.
    public var wantsDrainNotice = false
    var sweepSlot = -1
    private var closeError: Error?

    init(fd: Int32, loop: EventLoop, peer: String, tls: TLSEngine?) {
        self.fd = fd
        self.loop = loop
        self.peer = peer
        self.tls = tls
    }

    /// Wraps a connected, non-blocking socket and registers it with `loop` (loop thread only).
    /// `makeHandler` gets the channel so the handler can keep it.
    @discardableResult
    public static func adopt(fd: Int32, loop: EventLoop, peer: String, tls: TLSEngine?,
                             makeHandler: (Channel) -> ChannelHandler) throws -> Channel {
        let channel = Channel(fd: fd, loop: loop, peer: peer, tls: tls)
        let handler = makeHandler(channel)
        channel.handler = handler
        channel.interest = hub_EPOLLIN() | hub_EPOLLRDHUP()
        do {
            try loop.register(channel, events: channel.interest)
        } catch {
            closeDescriptor(fd)
            throw error
        }
        loop.addChannel(channel)
        handler.channelActive(channel)
        if let tls, tls.hasPendingCiphertext { channel.pullCiphertext(tls) }
        return channel
    }

    public var isActive: Bool { state == .active }
    public var isTLS: Bool { tls != nil }
    public var negotiatedALPN: String? { tls?.negotiatedALPN }
    /// Bytes queued and not yet accepted by the kernel: the backpressure signal.
    public var outboundBytes: Int { outbound.count }

    // MARK: writing

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state != .closed, bytes.count > 0 else { return }
        if let tls {
            do { try tls.send(bytes) } catch { fail(error); return }
            pullCiphertext(tls)
        } else {
            outbound.append(bytes)
            scheduleFlush()
        }
    }

    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Queues a frame shared with other channels, without copying it (except through TLS,
    /// which must encrypt per connection anyway).
    public func write(shared: SharedBytes) {
        guard state != .closed else { return }
        if tls != nil {
            shared.bytes.withUnsafeBytes { write($0) }
        } else {
            outbound.append(shared: shared)
            scheduleFlush()
        }
    }

    /// Lets an encoder append straight into the output queue. Through TLS the bytes go to a
    /// loop scratch buffer and are encrypted from there.
    public func withOutput<R>(_ body: (inout [UInt8]) -> R) -> R {
        if let tls {
            loop.scratch.removeAll(keepingCapacity: true)
            let r = body(&loop.scratch)
            if state != .closed {
                do { try loop.scratch.withUnsafeBytes { try tls.send($0) } } catch { fail(error); return r }
                pullCiphertext(tls)
            }
            return r
        }
        let r = outbound.withTail(body)
        if state != .closed { scheduleFlush() }
        return r
    }

    private func pullCiphertext(_ tls: TLSEngine) {
        guard tls.hasPendingCiphertext else { return }
        _ = outbound.withTail { tls.drainCiphertext(into: &$0) }
        scheduleFlush()
    }

    private func scheduleFlush() {
        if !flushScheduled {
            flushScheduled = true
            loop.flushList.append(self)
        }
    }

    /// Writes as much as the kernel takes now; called by the loop once per iteration.
    func flushNow() {
        flushScheduled = false
        guard state != .closed else { return }
        if !outbound.isEmpty {
            do {
                _ = try outbound.flush { iov in
                    switch try syscall("sendmsg", { hub_writev(fd, iov.baseAddress, Int32(iov.count)) }) {
                    case .done(let n): return n
                    case .wouldBlock: return nil
                    }
                }
            } catch {
                fail(error)
                return
            }
        }
        if outbound.isEmpty {
            setWantWrite(false)
            if state == .closing { markForClose() ; return }
            if backedUp || wantsDrainNotice {
                backedUp = false
                wantsDrainNotice = false
                handler.channelWritable(self)
            }
        } else {
            backedUp = true
            setWantWrite(true)
        }
    }

    // MARK: reading

    public func handleEvents(_ events: UInt32) {
        if events & hub_EPOLLIN() != 0 || events & hub_EPOLLRDHUP() != 0 {
            readable()
        }
        if state == .closed { return }
        if events & hub_EPOLLOUT() != 0 {
            flushNow()
        }
        if events & (hub_EPOLLERR() | hub_EPOLLHUP()) != 0 && state != .closed {
            // Pick up the socket error for the log, then close.
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            closeError = err != 0 ? IOError(call: "socket", errno: err) : nil
            close(.immediately)
        }
    }

    private func readable() {
        let buffer = loop.receiveBuffer
        // A few reads per wake-up at most, so one busy peer cannot starve the loop.
        for _ in 0..<4 {
            guard state == .active, !readPaused else { return }
            let result: IOResult<Int>
            do {
                result = try syscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            } catch {
                fail(error)
                return
            }
            guard case .done(let n) = result else { return }
            if n == 0 {
                handler.channelReadEOF(self)
                return
            }
            deliver(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
            // A short read means the socket is drained; level-triggered epoll reports more later.
            if n < buffer.count { return }
        }
    }

    private func deliver(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let tls else {
            handler.channelRead(self, bytes)
            return
        }
        do {
            let status = try tls.receive(UnsafeRawBufferPointer(bytes)) { plaintext in
                // The engine's per-thread scratch buffer: ours to modify until we return.
                if state == .active { handler.channelRead(self, UnsafeMutableRawBufferPointer(mutating: plaintext)) }
            }
            pullCiphertext(tls)
            if status == .closed, state == .active { handler.channelReadEOF(self) }
        } catch {
            pullCiphertext(tls) // a fatal alert, if OpenSSL produced one
            closeError = error
            close(.afterFlush)
        }
    }

    /// Stops reading (backpressure, or pipelined requests piling up); `resumeReading` undoes it.
    public func pauseReading() {
        guard !readPaused, state != .closed else { return }
        readPaused = true
        updateInterest()
    }

    public func resumeReading() {
        guard readPaused, state == .active else { return }
        readPaused = false
        updateInterest()
    }

    private var wantWrite = false

    private func setWantWrite(_ on: Bool) {
        guard wantWrite != on else { return }
        wantWrite = on
        updateInterest()
    }

    private func updateInterest() {
        var events: UInt32 = hub_EPOLLRDHUP()
        if !readPaused && state == .active { events |= hub_EPOLLIN() }
        if wantWrite { events |= hub_EPOLLOUT() }
        if events != interest {
            interest = events
            loop.modify(self, events: events)
        }
    }

    // MARK: closing

    /// Closes the channel; the descriptor is released at the end of the loop iteration.
    public func close(_ mode: CloseMode) {
        switch state {
        case .closed: return
        case .closing where mode == .afterFlush: return
        default: break
        }
        if mode == .afterFlush {
            state = .closing
            readPaused = true
            if let tls {
                tls.shutdown()
                pullCiphertext(tls)
            }
            updateInterest()
            if outbound.isEmpty { markForClose() } else { scheduleFlush() }
        } else {
            markForClose()
        }
    }

    private func fail(_ error: Error) {
        closeError = error
        markForClose()
    }

    private func markForClose() {
        guard state != .closed else { return }
        state = .closed
        loop.closeList.append(self)
    }

    func finishClose() {
        loop.deregister(self)
        loop.removeChannel(self)
        outbound.removeAll()
        closeDescriptor(fd)
        tls = nil
        let h = handler
        h?.channelClosed(self, error: closeError)
        handler = nil
    }

    /// Asks the handler to wind down for shutdown (loop thread).
    public func drain() {
        guard state == .active else { return }
        handler.channelDrain(self)
    }

    func tick(now: UInt64) {
        guard state != .closed else { return }
        outbound.releaseCapacityIfEmpty()
        handler.channelTick(self, now: now)
    }
}
