import CHiredis
import HubIO

/// What a `HiredisConnection` reports, on its loop thread.
protocol HiredisConnectionDelegate: AnyObject {
    /// TCP connect finished; commands may be sent.
    func hiredisDidConnect(_ connection: HiredisConnection)
    /// A reply for the command sent with `tag` (0 for pub/sub pushes). `nil`: the connection is
    /// going away and this command will never be answered.
    func hiredis(_ connection: HiredisConnection, didReceive reply: RedisValue?, tag: UInt)
    /// The context is gone (connect failed, the peer closed, a read/write/protocol error).
    /// Sent once, never after the owner called `close()`.
    func hiredisDidClose(_ connection: HiredisConnection, error: HiredisConnection.Failure)
}

/// The one place that calls hiredis: a `final class` owning one `redisAsyncContext` (one TCP
/// connection, from `redisAsyncConnect` to its free). Everything above it sees Swift values.
///
/// hiredis is plugged into our loop the way its `adapters/ae.h` plugs it into Redis's own: the
/// `ev.addRead/delRead/addWrite/delWrite` hooks drive a `DescriptorWatcher` (idempotent, like
/// ae's `reading`/`writing` flags), `ev.cleanup` stops it, and readiness calls
/// `redisAsyncHandleRead/Write`. One difference, for throughput: once connected, `addWrite`
/// does not register `EPOLLOUT` but queues one flush task on the loop, which runs after every
/// handler of the iteration has queued its commands and writes them all at once (Redis's own
/// `handleClientsWithPendingWrites`). `EPOLLOUT` is registered only when that write could not
/// finish. This saves two `epoll_ctl` and an `epoll_wait` round per batch.
///
/// Lifetime: C callbacks find this object through `ac->data`/`ev.data`, which holds a +1
/// reference for as long as the context exists, so hiredis can never call into a freed object.
/// The reference is dropped (on a later loop task) after `ev.cleanup`, when hiredis is done with
/// the context and the watcher is stopped. The delegate and the watcher's closures are not weak
/// references: a weak reference gives an object a side table, after which every retain and
/// release of it takes the slow path (measured at ~7% of a pipelined command).
///
/// Re-entrancy: hiredis calls back into us from inside `redisAsyncHandleRead/Write`, and
/// freeing the context there would pull it out from under hiredis. `close()` called inside
/// such a call is therefore deferred to the moment the outermost call returns.
///
/// Loop thread only.
final class HiredisConnection {
    /// Why the context went away.
    struct Failure: Sendable {
        /// hiredis's error class (`REDIS_ERR_IO`, `REDIS_ERR_EOF`, `REDIS_ERR_PROTOCOL`, ...);
        /// 0 for none.
        let code: Int32
        let message: String
        var isProtocolError: Bool { code == REDIS_ERR_PROTOCOL }
    }

    /// Counters for the pipelining measurement: how many commands went into how many writes.
    struct Statistics: Sendable {
        var commands = 0
        var writeEvents = 0
        var readEvents = 0
    }

    let loop: EventLoop
    /// The owner. It sets this to `nil` before it lets go of the connection (and closes it), so
    /// the unowned reference never outlives it.
    unowned(unsafe) var delegate: HiredisConnectionDelegate?
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var watcher: DescriptorWatcher?
    /// The +1 reference held for hiredis while the context exists.
    private var retainedForHiredis: Unmanaged<HiredisConnection>?
    /// Nesting depth of calls into hiredis that may call back into us.
    private var depth = 0
    private var closeDeferred = false
    /// A flush task is queued on the loop.
    private var flushQueued = false
    /// Inside a flush: an `addWrite` now means the socket is full, so wait for `EPOLLOUT`.
    private var flushing = false
    private(set) var statistics = Statistics()

    /// Where `command` lays its arguments out for hiredis.
    private let encoder = RESPCommandBuffer()

    /// Starts a non-blocking connect. Throws when hiredis fails before any I/O (no socket,
    /// unresolvable host).
    init(host: String, port: Int, loop: EventLoop, delegate: HiredisConnectionDelegate) throws(RedisError) {
        self.loop = loop
        self.delegate = delegate
        guard let ac = redisAsyncConnect(host, Int32(port)) else { throw .connectionLost }
        if ac.pointee.err != 0 {
            let message = ac.pointee.errstr.map { String(cString: $0) } ?? "connect failed"
            redisAsyncFree(ac)
            throw .protocolError("connect to \(host):\(port): \(message)")
        }
        context = ac
        // Safe without a retain: the watcher is stopped (in `cleanup`) before the +1 below is
        // released, so it never calls a freed object.
        watcher = DescriptorWatcher(fd: ac.pointee.c.fd, loop: loop,
                                    onReadable: { [unowned(unsafe) self] in self.handleRead() },
                                    onWritable: { [unowned(unsafe) self] in self.handleWrite() })
        let retained = Unmanaged.passRetained(self)
        retainedForHiredis = retained
        ac.pointee.data = retained.toOpaque()
        ac.pointee.ev.data = retained.toOpaque()
        ac.pointee.ev.addRead = { HiredisConnection.from($0).watch(read: true) }
        ac.pointee.ev.delRead = { HiredisConnection.from($0).watch(read: false) }
        ac.pointee.ev.addWrite = { HiredisConnection.from($0).wantsWrite() }
        ac.pointee.ev.delWrite = { HiredisConnection.from($0).watch(write: false) }
        ac.pointee.ev.cleanup = { HiredisConnection.from($0).cleanup() }
        // Dead peers that never send a FIN/RST (a partition) are found by TCP keep-alive too,
        // not only by command timeouts.
        _ = redisEnableKeepAlive(&ac.pointee.c)
        _ = redisAsyncSetDisconnectCallback(ac) { ac, _ in
            // Nothing to do: `cleanup` (which hiredis runs just before this) already reported.
            _ = ac
        }
        // Registering the connect callback makes hiredis ask for write readiness, which is how
        // a non-blocking connect completes; the hooks must be in place before this call.
        _ = redisAsyncSetConnectCallback(ac) { ac, status in
            guard let data = ac?.pointee.data else { return }
            Unmanaged<HiredisConnection>.fromOpaque(data).takeUnretainedValue().connected(ok: status == REDIS_OK)
        }
    }

    deinit {
        // Unreachable while the context exists (hiredis holds a reference), so nothing to free.
        assert(context == nil)
    }

    private static func from(_ data: UnsafeMutableRawPointer?) -> HiredisConnection {
        Unmanaged<HiredisConnection>.fromOpaque(data!).takeUnretainedValue()
    }

    // MARK: commands

    /// Queues one command in hiredis's output buffer (written by the flush at the end of the loop
    /// iteration, so every command sent in one iteration leaves in one `write`). Returns false
    /// when hiredis refuses: the context is disconnecting or gone.
    func command(_ args: [RedisArgument], tag: UInt) -> Bool {
        guard let ac = context, !closeDeferred, !args.isEmpty else { return false }
        let status = encoder.withEncoded(args) { command, length in
            redisAsyncFormattedCommand(ac, hiredisReplyCallback, UnsafeMutableRawPointer(bitPattern: tag), command, length)
        }
        if status == REDIS_OK { statistics.commands += 1 }
        return status == REDIS_OK
    }

    /// Frees the context (and with it the socket). Commands still outstanding are dropped
    /// without a word to the delegate: the owner has already answered them. Idempotent.
    func close() {
        delegate = nil
        guard context != nil else { return }
        if depth > 0 {
            closeDeferred = true
            return
        }
        freeNow()
    }

    private func freeNow() {
        closeDeferred = false
        guard let ac = context else { return }
        // Runs the pending callbacks (delegate is nil: ignored) and `cleanup`, which clears
        // `context`, stops the watcher and lets go of hiredis's reference; then hiredis closes
        // the descriptor.
        redisAsyncFree(ac)
    }

    // MARK: readiness

    private func handleRead() {
        guard let ac = context else { return }
        statistics.readEvents += 1
        enter()
        redisAsyncHandleRead(ac)
        leave()
    }

    private func handleWrite() {
        guard let ac = context else { return }
        statistics.writeEvents += 1
        enter()
        redisAsyncHandleWrite(ac)
        leave()
    }

    @inline(__always) private func enter() { depth += 1 }

    @inline(__always) private func leave() {
        depth -= 1
        if depth == 0 && closeDeferred { freeNow() }
    }

    /// hiredis has output to send. Connected: flush once at the end of this loop iteration.
    /// Still connecting (the socket reports the connect's outcome as writability) or the last
    /// write came up short: wait for `EPOLLOUT`.
    private func wantsWrite() {
        guard context != nil, let watcher, !watcher.isWriting else { return }
        let connected = context.map { $0.pointee.c.flags & REDIS_CONNECTED != 0 } ?? false
        if connected && !flushing {
            guard !flushQueued else { return }
            flushQueued = true
            loop.execute { self.flush() }
        } else {
            watcher.setInterest(read: watcher.isReading, write: true)
        }
    }

    private func flush() {
        flushQueued = false
        guard context != nil, let watcher, !watcher.isWriting else { return }
        flushing = true
        handleWrite()
        flushing = false
    }

    private func watch(read: Bool) {
        guard context != nil, let watcher else { return }
        watcher.setInterest(read: read, write: watcher.isWriting)
    }

    private func watch(write: Bool) {
        guard context != nil, let watcher else { return }
        watcher.setInterest(read: watcher.isReading, write: write)
    }

    /// hiredis is tearing the context down (from `__redisAsyncFree`, after it has failed every
    /// pending callback and before it closes the descriptor).
    private func cleanup() {
        watcher?.stop()
        let failure = currentFailure()
        context = nil
        // hiredis still uses `ac->data` for the rest of its teardown (and callers up the stack
        // use `self`): release its reference on a later loop task, not here.
        if let retained = retainedForHiredis {
            retainedForHiredis = nil
            loop.execute { retained.release() }
        }
        let delegate = self.delegate
        self.delegate = nil
        delegate?.hiredisDidClose(self, error: failure)
    }

    private func currentFailure() -> Failure {
        guard let ac = context else { return Failure(code: 0, message: "closed") }
        let code = ac.pointee.c.err
        if code == 0 { return Failure(code: 0, message: "connection closed") }
        let message = withUnsafeBytes(of: &ac.pointee.c.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return Failure(code: code, message: message)
    }

    // MARK: callbacks

    private func connected(ok: Bool) {
        // On failure hiredis frees the context right after this returns and runs `cleanup`,
        // which reports the error; nothing to do here.
        guard ok else { return }
        delegate?.hiredisDidConnect(self)
    }

    /// Called from `hiredisReplyCallback` for every reply (or `nil` on teardown).
    fileprivate func deliver(_ reply: UnsafeMutableRawPointer?, tag: UInt) {
        guard let delegate else { return }
        let value = reply.map { Self.decode($0.assumingMemoryBound(to: redisReply.self)) }
        delegate.hiredis(self, didReceive: value, tag: tag)
    }

    /// The error hiredis recorded on the context, for a `nil` reply's cause.
    var failure: Failure { currentFailure() }

    /// Copies a reply tree out of hiredis's memory.
    private static func decode(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            guard let str = r.str, r.len > 0 else { return .string([]) }
            return .string(Array(UnsafeRawBufferPointer(start: str, count: r.len)))
        case REDIS_REPLY_STATUS:
            guard let str = r.str else { return .status("") }
            // By far the most common reply: skip UTF-8 validation and string creation.
            if r.len == 2 && str[0] == 0x4f && str[1] == 0x4b { return .status("OK") }
            return .status(String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            guard let str = r.str else { return .error("") }
            return .error(String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            guard let elements = r.element else { return .array([]) }
            var values: [RedisValue] = []
            values.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let element = elements[i] { values.append(decode(element)) } else { values.append(.null) }
            }
            return .array(values)
        default:
            return .null
        }
    }
}

/// The one reply callback of every command: the connection is found through `ac->data`, the
/// command through `privdata` (its sequence number, or 0 for pub/sub pushes).
private func hiredisReplyCallback(_ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?, _ privdata: UnsafeMutableRawPointer?) {
    guard let data = ac?.pointee.data else { return }
    Unmanaged<HiredisConnection>.fromOpaque(data).takeUnretainedValue().deliver(reply, tag: UInt(bitPattern: privdata))
}
