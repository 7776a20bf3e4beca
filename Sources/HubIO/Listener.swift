import CHubShims
import Foundation
import HubTelemetry

/// A listening socket on one loop. Every loop has its own (SO_REUSEPORT), so the kernel spreads
/// new connections across loops and no accept is ever handed between threads.
///
/// EMFILE/ENFILE: a level-triggered listener whose pending connection cannot be accepted would
/// wake the loop forever. Each listener keeps a spare descriptor: on EMFILE it frees the spare,
/// accepts and immediately closes the connection (the client sees a reset instead of a hang),
/// and takes the spare back. If even that fails, it stops watching the socket for
/// `acceptPause` and tries again then.
public final class Listener: EventHandler {
    public let fd: Int32
    public unowned let loop: EventLoop
    public let address: SocketAddress
    /// Called for each accepted, registered connection to create its protocol handler.
    private let makeHandler: (Channel) -> ChannelHandler
    /// TLS for connections accepted from now on; swapped on reload (loop thread only).
    public var tlsContext: TLSContext?
    /// Connections this loop accepts at most; beyond it new ones are closed at once.
    public var maxConnections: Int
    private var spareFD: Int32 = -1
    private var paused = false
    private var closed = false
    private static let acceptPause: UInt64 = 100_000_000
    private var lastEMFILELog: UInt64 = 0
    /// Logged (rate-limited) when accept fails.
    public var onAcceptError: ((IOError) -> Void)?

    /// Binds and listens. With port 0 the kernel picks a port; pass the returned address's port
    /// to the other loops' listeners so that they share it.
    public init(loop: EventLoop, address: SocketAddress, backlog: Int32 = 1024, maxConnections: Int,
                tlsContext: TLSContext?, makeHandler: @escaping (Channel) -> ChannelHandler) throws {
        self.loop = loop
        self.maxConnections = maxConnections
        self.tlsContext = tlsContext
        self.makeHandler = makeHandler
        let fd = try syscallChecked("socket") { hub_socket_nonblocking(address.family, Int32(SOCK_STREAM.rawValue), 0) }
        do {
            try SocketOptions.setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)")
            try SocketOptions.setInt(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)")
            _ = try address.withSockaddr { sa, len in try syscallChecked("bind") { bind(fd, sa, len) } }
            try syscallChecked("listen") { listen(fd, backlog) }
            self.address = try SocketAddress.local(of: fd)
        } catch {
            closeDescriptor(fd)
            throw error
        }
        self.fd = fd
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    /// Starts accepting (loop thread only).
    public func start() throws {
        try loop.register(self, events: hub_EPOLLIN())
    }

    /// Stops accepting and closes the socket (loop thread only). Pending connections in the
    /// backlog are reset by the kernel; the load balancer retries them elsewhere.
    public func close() {
        guard !closed else { return }
        closed = true
        loop.deregister(self)
        closeDescriptor(fd)
        if spareFD >= 0 { closeDescriptor(spareFD); spareFD = -1 }
    }

    public func handleEvents(_ events: UInt32) {
        // Bounded per wake-up so that a connection storm does not starve established traffic.
        for _ in 0..<64 {
            guard !closed else { return }
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result: IOResult<Int32>
            do {
                result = try withUnsafeMutablePointer(to: &storage) { p in
                    try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                        try syscall("accept4") { hub_accept4(fd, sa, &len) }
                    }
                }
            } catch let error as IOError {
                acceptFailed(error)
                return
            } catch { return }
            guard case .done(let client) = result else { return }
            accepted(client, SocketAddress(storage: storage, length: len))
        }
    }

    private func accepted(_ client: Int32, _ peer: SocketAddress) {
        if loop.channelCount >= maxConnections {
            loop.metrics?.connectionsRejected.increment(shard: loop.index)
            closeDescriptor(client)
            return
        }
        SocketOptions.noDelay(client)
        let engine: TLSEngine?
        do {
            engine = try tlsContext.map { try TLSEngine(context: $0) }
        } catch {
            closeDescriptor(client)
            loop.metrics?.acceptErrors.increment(shard: loop.index)
            return
        }
        do {
            try Channel.adopt(fd: client, loop: loop, peer: peer.description, tls: engine, makeHandler: makeHandler)
            loop.metrics?.connectionsAccepted.increment(shard: loop.index)
        } catch {
            loop.metrics?.acceptErrors.increment(shard: loop.index)
        }
    }

    private func acceptFailed(_ error: IOError) {
        loop.metrics?.acceptErrors.increment(shard: loop.index)
        if loop.now &- lastEMFILELog > 1_000_000_000 {
            lastEMFILELog = loop.now
            onAcceptError?(error)
        }
        switch error.errno {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            if spareFD >= 0 {
                closeDescriptor(spareFD)
                spareFD = -1
                let victim = hub_accept4(fd, nil, nil)
                if victim >= 0 { closeDescriptor(victim) }
                spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
            }
            if spareFD < 0 { pause() }
        case ECONNABORTED, EPROTO, EPERM:
            break // that one connection failed; keep accepting
        default:
            pause()
        }
    }

    private func pause() {
        guard !paused, !closed else { return }
        paused = true
        loop.deregister(self)
        loop.schedule(after: Self.acceptPause) { [weak self] in
            guard let self, !self.closed else { return }
            self.paused = false
            if self.spareFD < 0 { self.spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC) }
            try? self.loop.register(self, events: hub_EPOLLIN())
        }
    }
}

