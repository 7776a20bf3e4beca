import Foundation
import HubHTTP
import HubIO

/// One request's life on its event loop: resolve the host (on a helper thread), connect to each
/// resolved address in turn until one accepts, optionally run TLS, write the request, parse the
/// response, and resume the waiting task exactly once, with the response or an error.
///
/// One overall deadline covers every step; when it passes, the exchange fails with `.timeout`
/// and closes whatever it has open.
final class HTTPExchange: ChannelHandler, @unchecked Sendable {
    // @unchecked Sendable: the requesting task hands the exchange to its loop and to the
    // resolver thread, but every mutable property below is read and written on the loop's
    // thread only: `start` and `cancel` arrive through `loop.execute`, the resolver thread
    // reports through `loop.execute`, and the Connector, Channel and timer call back on the loop.
    // The one exception is `continuation`, which the task stores before it queues `start`; the
    // loop's task-queue lock orders that write before every read on the loop.

    typealias Outcome = Result<HTTPClientResponse, HTTPClientError>

    private let loop: EventLoop
    private let url: HTTPClientURL
    private let requestBytes: [UInt8]
    private let tlsContext: TLSContext?
    private let limits: HTTPResponseParserLimits
    private let timeoutNanoseconds: UInt64

    /// Set by the requesting task before `start` is queued; taken (and resumed) by `finish`.
    var continuation: CheckedContinuation<Outcome, Never>?

    private var started = false
    private var cancelRequested = false
    private var finished = false
    private var deadline: UInt64 = 0
    private var timer: TimerHandle?
    private var addresses: [SocketAddress] = []
    private var connectErrors: [String] = []
    private var engine: TLSEngine?
    private var channel: Channel?
    private var parser: HTTPResponseParser

    init(loop: EventLoop, url: HTTPClientURL, method: HTTPMethod, requestBytes: [UInt8], tlsContext: TLSContext?,
         limits: HTTPResponseParserLimits, timeoutNanoseconds: UInt64) {
        self.loop = loop
        self.url = url
        self.requestBytes = requestBytes
        self.tlsContext = tlsContext
        self.limits = limits
        self.timeoutNanoseconds = timeoutNanoseconds
        parser = HTTPResponseParser(limits: limits, requestMethod: method)
    }

    // MARK: Driving (loop thread)

    func start() {
        started = true
        if cancelRequested { return finish(.failure(.cancelled)) }
        deadline = loop.now &+ timeoutNanoseconds
        // Weak: a timer stays in the loop's heap until due even when cancelled.
        timer = loop.schedule(after: timeoutNanoseconds) { [weak self] in self?.finish(.failure(.timeout)) }
        // getaddrinfo blocks (DNS), so it runs on a thread of its own, never on the loop. A
        // resolver that outlives the deadline just reports to an exchange that has finished.
        let host = url.host, port = url.port, loop = self.loop
        let thread = Thread { [self] in
            let result = Result { try SocketAddress.resolveAll(host: host, port: port) }
            loop.execute { self.resolved(result) }
        }
        thread.name = "hub-http-resolve"
        thread.start()
    }

    func cancel() {
        cancelRequested = true
        if started { finish(.failure(.cancelled)) }
    }

    private func resolved(_ result: Result<[SocketAddress], Error>) {
        guard !finished else { return }
        switch result {
        case .failure:
            finish(.failure(.connectFailed("cannot resolve host '\(url.host)'")))
        case .success(let list):
            addresses = list
            connectNext()
        }
    }

    /// Tries the next resolved address; reports every address's failure once none is left.
    private func connectNext() {
        guard !finished else { return }
        guard !addresses.isEmpty else {
            return finish(.failure(.connectFailed(connectErrors.isEmpty ? "no address for '\(url.host)'" : connectErrors.joined(separator: "; "))))
        }
        let address = addresses.removeFirst()
        if let tlsContext {
            do {
                // The whole request may be written before the handshake completes; let the engine
                // hold it rather than refuse a large body.
                engine = try TLSEngine(context: tlsContext, serverName: url.host,
                                       maxBufferedPlaintext: max(256 * 1024, requestBytes.count))
            } catch {
                return finish(.failure(.tlsFailed("\(error)")))
            }
        }
        let remaining = deadline > loop.now ? deadline &- loop.now : 1
        Connector.connect(to: address, on: loop, tls: engine, timeout: remaining, makeHandler: { [self] _ in self },
                          onFailure: { [weak self] error in self?.connectFailed(address, error) })
    }

    private func connectFailed(_ address: SocketAddress, _ error: Error) {
        guard !finished else { return }
        // A failure to set up the client side of TLS is not a reason to try another address.
        if let tlsError = error as? TLSError { return finish(.failure(.tlsFailed(tlsError.description))) }
        connectErrors.append("\(address): \(error)")
        connectNext()
    }

    /// Resumes the task once; closes the connection and stops the timer.
    private func finish(_ outcome: Outcome) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        timer = nil
        channel?.close(.immediately)
        let waiting = continuation
        continuation = nil
        waiting?.resume(returning: outcome)
    }

    // MARK: ChannelHandler (loop thread)

    func channelActive(_ channel: Channel) {
        self.channel = channel
        // Connected after the deadline already fired: nobody waits for this connection.
        if finished { return channel.close(.immediately) }
        channel.write(requestBytes)
    }

    func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer) {
        guard !finished else { return }
        parser.append(UnsafeRawBufferPointer(bytes))
        deliverParsed()
    }

    func channelReadEOF(_ channel: Channel) {
        guard !finished else { return channel.close(.immediately) }
        if let engine, !engine.isHandshakeComplete {
            return finish(.failure(.tlsFailed("connection closed by the server during the TLS handshake")))
        }
        parser.finish()
        deliverParsed()
        // Whatever the verdict, the peer is gone.
        channel.close(.immediately)
    }

    func channelClosed(_ channel: Channel, error: Error?) {
        self.channel = nil
        guard !finished else { return }
        if let tlsError = error as? TLSError {
            finish(.failure(.tlsFailed(tlsError.description)))
        } else if let engine, !engine.isHandshakeComplete {
            finish(.failure(.tlsFailed(error.map { "\($0)" } ?? "connection closed during the TLS handshake")))
        } else if let error {
            finish(.failure(.connectionLost("\(error)")))
        } else {
            finish(.failure(.badResponse("connection closed before a complete response")))
        }
    }

    private func deliverParsed() {
        switch parser.next() {
        case .needMoreData:
            return
        case .response(let response):
            finish(.success(HTTPClientResponse(status: response.status, headers: response.headers, body: response.body)))
        case .error(let error):
            finish(.failure(error.isBodyTooLarge ? .bodyTooLarge(limit: limits.maxBodyBytes) : .badResponse(error.description)))
        }
    }
}
