import CHubShims
import Foundation

/// Opens outgoing TCP connections on a loop without blocking it: `connect` returns
/// EINPROGRESS, the loop watches for writability, `SO_ERROR` tells the outcome, and the socket
/// becomes a `Channel` (optionally with TLS, client side). Used by the WebSocket client and
/// the load tools.
public final class Connector: EventHandler {
    public let fd: Int32
    private unowned(unsafe) let loop: EventLoop
    private let peer: String
    private let tls: TLSEngine?
    private let makeHandler: (Channel) -> ChannelHandler
    private let onFailure: (Error) -> Void
    private var done = false
    private var timer: TimerHandle?

    /// Starts connecting to `address` (loop thread only). Exactly one of `makeHandler` (on
    /// success, with the new channel) or `onFailure` is called.
    @discardableResult
    public static func connect(to address: SocketAddress, on loop: EventLoop, tls: TLSEngine? = nil, timeout: UInt64 = 10_000_000_000,
                               makeHandler: @escaping (Channel) -> ChannelHandler, onFailure: @escaping (Error) -> Void) -> Connector? {
        let fd: Int32
        do {
            fd = try syscallChecked("socket") { hub_socket_nonblocking(address.family, Int32(SOCK_STREAM.rawValue), 0) }
        } catch {
            onFailure(error)
            return nil
        }
        SocketOptions.noDelay(fd)
        let connector = Connector(fd: fd, loop: loop, peer: address.description, tls: tls, makeHandler: makeHandler, onFailure: onFailure)
        let rc = address.withSockaddr { sa, len in Glibc.connect(fd, sa, len) }
        if rc == 0 || errno == EINPROGRESS || errno == EINTR {
            do {
                try loop.register(connector, events: hub_EPOLLOUT())
            } catch {
                closeDescriptor(fd)
                onFailure(error)
                return nil
            }
            connector.timer = loop.schedule(after: timeout) { [weak connector] in
                connector?.finish(IOError(call: "connect", errno: ETIMEDOUT))
            }
            return connector
        }
        let err = IOError(call: "connect", errno: errno)
        closeDescriptor(fd)
        onFailure(err)
        return nil
    }

    private init(fd: Int32, loop: EventLoop, peer: String, tls: TLSEngine?, makeHandler: @escaping (Channel) -> ChannelHandler, onFailure: @escaping (Error) -> Void) {
        self.fd = fd
        self.loop = loop
        self.peer = peer
        self.tls = tls
        self.makeHandler = makeHandler
        self.onFailure = onFailure
    }

    public func handleEvents(_ events: UInt32) {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        finish(err == 0 ? nil : IOError(call: "connect", errno: err))
    }

    private func finish(_ error: Error?) {
        guard !done else { return }
        done = true
        timer?.cancel()
        loop.deregister(self)
        if let error {
            closeDescriptor(fd)
            onFailure(error)
            return
        }
        do {
            if let tls { try tls.startHandshake() }
            try Channel.adopt(fd: fd, loop: loop, peer: peer, tls: tls, makeHandler: makeHandler)
        } catch {
            onFailure(error)
        }
    }
}
