import Foundation
import HubHTTP
import HubIO
import Synchronization

/// One request's life on its event loop: resolve the host (on a helper thread), connect to each
/// resolved address in turn until one accepts, optionally run TLS, write the request, parse the
/// response, and resume the waiting task exactly once, with the response or an error.
///
/// One overall deadline covers every step; when it passes, the exchange fails with `.timeout`
/// and closes whatever it has open. Cancellation and client shutdown decide the outcome from
/// any thread at once (the waiting task does not wait for the loop), then let the loop close
/// what is open.
final class HTTPExchange: ChannelHandler, @unchecked Sendable {
    // @unchecked Sendable: the exchange is shared by the requesting task, its loop, the resolver
    // thread and (on cancellation or shutdown) any thread. Every mutable property outside
    // `completion` is read and written on the loop's thread only: `start` and `tearDown` arrive
    // through `loop.execute`, the resolver thread reports through `loop.execute`, and the
    // Connector, Channel and timer call back on the loop. `completion`, the only state other
    // threads touch, is behind a Mutex.

    typealias Outcome = Result<HTTPClientResponse, HTTPClientError>

    /// The waiting task and the outcome, decided once by whoever comes first.
    private struct Completion {
        var continuation: CheckedContinuation<Outcome, Never>?
        var outcome: Outcome?
    }

    private let completion = Mutex(Completion())
    private let loop: EventLoop
    private let url: HTTPClientURL
    private let requestBytes: [UInt8]
    private let tlsContext: TLSContext?
    private let limits: HTTPResponseParserLimits
    private let timeoutNanoseconds: UInt64

    /// Loop-side resources are released; nothing more is started.
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

    // MARK: Outcome (any thread)

    /// Hands over the waiting task; resumes it at once if the outcome is already decided.
    func wait(_ continuation: CheckedContinuation<Outcome, Never>) {
        let decided: Outcome? = completion.withLock { state in
            if let outcome = state.outcome { return outcome }
            state.continuation = continuation
            return nil
        }
        if let decided { continuation.resume(returning: decided) }
    }

    /// Decides the outcome unless it is decided already, and resumes the task if it waits.
    private func complete(_ outcome: Outcome) {
        let waiting: CheckedContinuation<Outcome, Never>? = completion.withLock { state in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.continuation = nil }
            return state.continuation
        }
        waiting?.resume(returning: outcome)
    }

    private var isComplete: Bool { completion.withLock { $0.outcome != nil } }

    /// Fails the request now (cancellation, shutdown) and has the loop release what is open.
    func abort(_ error: HTTPClientError) {
        complete(.failure(error))
        loop.execute { self.tearDown() }
    }

    // MARK: Driving (loop thread)

    func start() {
        // Aborted before the loop got to it.
        if isComplete { return tearDown() }
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
        // "127.0.0.1:8080: Connection refused" rather than IOError's "connect failed: …" again.
        let reason = (error as? IOError).map { String(cString: strerror($0.errno)) } ?? "\(error)"
        connectErrors.append("\(address): \(reason)")
        connectNext()
    }

    /// Decides the outcome (if still open) and releases the loop-side resources.
    private func finish(_ outcome: Outcome) {
        complete(outcome)
        tearDown()
    }

    /// Stops the timer and closes the connection; later events are ignored. Loop thread.
    private func tearDown() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        timer = nil
        channel?.close(.immediately)
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
