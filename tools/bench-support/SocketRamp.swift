import Foundation
import HubHTTPClient
import HubIO
import HubWebSocket
import HubWebSocketIO

// Opening many client sockets against a hub: device tokens, the client options every bench
// socket uses, and a ramp that keeps a bounded number of connects pending per loop (a burst of
// thousands of SYNs overflows the listener's backlog and measures retransmit timers instead).

/// Device tokens through `POST /api/v1/device/auth` on `base`, in the devices' order.
public func deviceTokens(base: String, devices: [BenchDevice], concurrency: Int) throws -> [String] {
    try blocking {
        let client = try HTTPClient()
        defer { client.shutdown() }
        return try await concurrently(devices.count, concurrency: concurrency) { i in
            let grant = try await call(client, .post, "\(base)/api/v1/device/auth",
                                       json: ["device_id": devices[i].id, "device_secret": devices[i].secret], expect: 200)
            guard let token = grant["token"] as? String else { throw Failure("device auth without token") }
            return token
        }
    }
}

/// Client options of a bench socket: the client never gives up on a quiet hub (the hub pings
/// idle sockets and the connection answers by itself).
public func benchSocketOptions(host: String, port: Int, path: String) -> WebSocketClient.Options {
    var o = WebSocketClient.Options(host: host, port: port)
    o.path = path
    var settings = WebSocketSettings()
    settings.pingInterval = 1e9
    settings.idleTimeout = 1e9
    o.settings = settings
    return o
}

/// Opens sockets on one loop, at most `concurrency` connects pending; `done` is called on the
/// loop once per socket with its outcome. Loop thread only.
public final class SocketRamp {
    public struct Socket {
        public var options: WebSocketClient.Options
        public var delegate: WebSocketDelegate
        public init(options: WebSocketClient.Options, delegate: WebSocketDelegate) {
            self.options = options
            self.delegate = delegate
        }
    }

    let loop: EventLoop
    let sockets: [Socket]
    let concurrency: Int
    let done: (Int, Result<WebSocketConnection, any Error>) -> Void
    private var next = 0
    private var pending = 0

    public init(loop: EventLoop, sockets: [Socket], concurrency: Int, done: @escaping (Int, Result<WebSocketConnection, any Error>) -> Void) {
        self.loop = loop
        self.sockets = sockets
        self.concurrency = max(1, concurrency)
        self.done = done
    }

    public func pump() {
        while pending < concurrency && next < sockets.count {
            let i = next, socket = sockets[i]
            next += 1
            pending += 1
            WebSocketClient.connect(socket.options, on: loop, makeDelegate: { _ in socket.delegate }) { result in
                self.pending -= 1
                self.done(i, result)
                // Not re-entrant: a connect can fail synchronously inside `pump`.
                self.loop.execute { self.pump() }
            }
        }
    }
}
