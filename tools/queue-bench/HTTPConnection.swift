import BenchSupport
import Foundation
import HubHTTP
import HubIO

/// A keep-alive HTTP/1.1 client connection on one HubIO loop, one request in flight at a time,
/// for the measured path (proposals and approvals): HubHTTPClient opens a connection per
/// request (`Connection: close`), which would measure TCP handshakes instead of the queue.
/// Requests are pre-encoded bytes; the answer is parsed with HubHTTP's `HTTPResponseParser`.
/// A connection the server closed is reopened on the next request. Loop thread only.
final class KeepAliveConnection: ChannelHandler {
    typealias Completion = (_ status: Int, _ headers: HTTPHeaders, _ body: [UInt8]) -> Void

    let loop: EventLoop
    let address: SocketAddress
    let hostField: String
    private var channel: Channel?
    private var connecting = false
    private var parser = HTTPResponseParser(requestMethod: .post)
    private var pending: (bytes: [UInt8], method: HTTPMethod, done: Completion)?
    private var inFlight: Completion?

    init(loop: EventLoop, address: SocketAddress, hostField: String) {
        self.loop = loop
        self.address = address
        self.hostField = hostField
    }

    var isBusy: Bool { inFlight != nil || pending != nil }

    /// `METHOD path` with a JSON body (or none) and a bearer credential.
    func request(_ method: HTTPMethod, _ path: String, bearer: String, body: [UInt8]?) -> [UInt8] {
        var head = "\(method.name) \(path) HTTP/1.1\r\nHost: \(hostField)\r\nAuthorization: Bearer \(bearer)\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
            return Array(head.utf8) + body
        }
        head += method == .get ? "\r\n" : "Content-Length: 0\r\n\r\n"
        return Array(head.utf8)
    }

    /// Sends one request (none may be in flight). Status 0 means the connection failed.
    func send(_ bytes: [UInt8], method: HTTPMethod, _ done: @escaping Completion) {
        precondition(!isBusy, "one request at a time")
        if let channel, channel.isActive {
            write(channel, bytes, method, done)
            return
        }
        pending = (bytes, method, done)
        guard !connecting else { return }
        connecting = true
        Connector.connect(to: address, on: loop, makeHandler: { channel in
            self.channel = channel
            return self
        }, onFailure: { error in
            self.connecting = false
            if let p = self.pending {
                self.pending = nil
                p.done(0, HTTPHeaders(), Array("connect: \(error)".utf8))
            }
        })
    }

    private func write(_ channel: Channel, _ bytes: [UInt8], _ method: HTTPMethod, _ done: @escaping Completion) {
        parser.requestMethod = method
        inFlight = done
        channel.write(bytes)
    }

    func channelActive(_ channel: Channel) {
        connecting = false
        parser = HTTPResponseParser(requestMethod: .post)
        if let p = pending {
            pending = nil
            write(channel, p.bytes, p.method, p.done)
        }
    }

    func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer) {
        parser.append(UnsafeRawBufferPointer(bytes))
        deliver(channel)
    }

    func channelReadEOF(_ channel: Channel) {
        parser.finish()
        deliver(channel)
        channel.close(.afterFlush)
    }

    func channelClosed(_ channel: Channel, error: Error?) {
        if self.channel === channel { self.channel = nil }
        connecting = false
        if let done = inFlight {
            inFlight = nil
            done(0, HTTPHeaders(), Array("connection closed before the response\(error.map { ": \($0)" } ?? "")".utf8))
        }
    }

    private func deliver(_ channel: Channel) {
        while inFlight != nil {
            switch parser.next() {
            case .needMoreData:
                return
            case .error(let error):
                let done = inFlight!
                inFlight = nil
                channel.close(.immediately)
                done(0, HTTPHeaders(), Array("bad response: \(error)".utf8))
                return
            case .response(let response):
                let done = inFlight!
                inFlight = nil
                if !response.keepAlive { channel.close(.afterFlush); self.channel = nil }
                done(response.status, response.headers, response.body)
            }
        }
    }
}
