import HubHTTP
import HubIO
import Synchronization

/// A small HTTP/1.1 client on a HubIO event loop, for the hub's outgoing calls (the JWKS fetch)
/// and for `hubctl`.
///
/// Each request opens its own connection and sends `Connection: close`: the callers make a
/// request every few minutes at most, so keep-alive would buy nothing and cost a pool. `https`
/// URLs run TLS through HubIO's engine, verifying the server's chain against the system trust
/// store (plus `Configuration.additionalCAFile`) and its certificate against the URL's host
/// name or IP address. Responses are parsed by `HTTPResponseParser`, with its limits; a body
/// over `limits.maxBodyBytes` fails the request instead of being buffered.
///
/// The client runs either on a loop it is given (the server passes one of its own; stop it only
/// after the client's requests are done or the client is shut down) or on a single-loop group it
/// starts and owns, stopped by `shutdown()` or when the client is released.
public final class HTTPClient: Sendable {
    /// Settings shared by every request of one client.
    public struct Configuration: Sendable {
        /// Response limits; the default body bound (1 MiB) suits key sets and API replies.
        public var limits: HTTPResponseParserLimits
        /// A PEM file of CA certificates trusted in addition to the system store (private or
        /// test CAs).
        public var additionalCAFile: String?
        /// Sent as `User-Agent` unless a request sets its own.
        public var userAgent: String

        public init(limits: HTTPResponseParserLimits = .init(), additionalCAFile: String? = nil,
                    userAgent: String = "DeviceHub-HTTPClient/1") {
            self.limits = limits
            self.additionalCAFile = additionalCAFile
            self.userAgent = userAgent
        }
    }

    public let configuration: Configuration
    private let loop: EventLoop
    /// The group this client started itself, if it was not given a loop.
    private let ownedGroup: EventLoopGroup?
    private let tlsContext: TLSContext
    private let state = Mutex(State())

    /// Whether the client is shut down, and the requests in flight (so shutdown can fail them
    /// instead of leaving their tasks waiting on a loop that no longer runs).
    private struct State {
        var isShutDown = false
        var inFlight: [ObjectIdentifier: HTTPExchange] = [:]
    }

    /// A client on a loop thread of its own. Call `shutdown()` when done with it.
    public convenience init(configuration: Configuration = .init()) throws {
        let group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
        try self.init(loop: group.loops[0], ownedGroup: group, configuration: configuration)
    }

    /// A client whose connections live on `eventLoop` (which the caller runs and stops).
    public convenience init(eventLoop: EventLoop, configuration: Configuration = .init()) throws {
        try self.init(loop: eventLoop, ownedGroup: nil, configuration: configuration)
    }

    private init(loop: EventLoop, ownedGroup: EventLoopGroup?, configuration: Configuration) throws {
        self.loop = loop
        self.ownedGroup = ownedGroup
        self.configuration = configuration
        do {
            // Built once: the trust store is loaded (and a bad CA file reported) up front.
            tlsContext = try TLSContext.client(verifyPeer: true, additionalCAFile: configuration.additionalCAFile)
        } catch {
            ownedGroup?.stopAndJoin()
            throw error
        }
    }

    deinit {
        shutdown()
    }

    /// Fails the requests in flight with `.shutdown` and stops the client's own loop thread (if
    /// it started one; a loop it was given keeps running). Later requests fail with `.shutdown`.
    /// Idempotent.
    public func shutdown() {
        let pending: [HTTPExchange]? = state.withLock { state in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            return Array(state.inFlight.values)
        }
        guard let pending else { return }
        for exchange in pending { exchange.abort(.shutdown) }
        guard let ownedGroup else { return }
        // Released from a callback on its own loop thread, the loop cannot join itself.
        if loop.inLoop {
            loop.stop()
        } else {
            ownedGroup.stopAndJoin()
        }
    }

    // MARK: Requests

    /// Sends one request and returns the complete response, whatever its status.
    ///
    /// `headers` are sent after `Host` and before `Content-Length` and `Connection`, which the
    /// client sets itself (so may the caller not). A body is announced with Content-Length;
    /// POST, PUT and PATCH always carry one (possibly `0`). `timeout` bounds the whole exchange,
    /// name resolution included. Cancelling the calling task fails the request with `.cancelled`
    /// at once.
    public func request(method: HTTPMethod, url: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
                        timeout: Duration = .seconds(30)) async throws(HTTPClientError) -> HTTPClientResponse {
        let parsed = try HTTPClientURL(url)
        let bytes = try Self.encode(method: method, url: parsed, headers: headers, body: body, userAgent: configuration.userAgent)
        let exchange = HTTPExchange(loop: loop, url: parsed, method: method, requestBytes: bytes,
                                    tlsContext: parsed.isTLS ? tlsContext : nil, limits: configuration.limits,
                                    timeoutNanoseconds: Self.nanoseconds(timeout))
        let id = ObjectIdentifier(exchange)
        let admitted = state.withLock { state in
            guard !state.isShutDown else { return false }
            state.inFlight[id] = exchange
            return true
        }
        guard admitted else { throw .shutdown }
        defer { _ = state.withLock { $0.inFlight.removeValue(forKey: id) } }
        let loop = self.loop
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                exchange.wait(continuation)
                loop.execute { exchange.start() }
            }
        } onCancel: {
            exchange.abort(.cancelled)
        }
        return try outcome.get()
    }

    /// `GET url`.
    public func get(_ url: String, headers: HTTPHeaders = HTTPHeaders(),
                    timeout: Duration = .seconds(30)) async throws(HTTPClientError) -> HTTPClientResponse {
        try await request(method: .get, url: url, headers: headers, timeout: timeout)
    }

    /// `POST url` with `body`.
    public func post(_ url: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8],
                     timeout: Duration = .seconds(30)) async throws(HTTPClientError) -> HTTPClientResponse {
        try await request(method: .post, url: url, headers: headers, body: body, timeout: timeout)
    }

    // MARK: Encoding

    /// Fields the client owns: a caller's value would contradict the framing it writes.
    private static let reservedFields = ["host", "content-length", "transfer-encoding", "connection"]

    static func encode(method: HTTPMethod, url: HTTPClientURL, headers: HTTPHeaders, body: [UInt8],
                       userAgent: String) throws(HTTPClientError) -> [UInt8] {
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: url.hostField)
        for field in headers.all {
            if reservedFields.contains(field.name.lowercased()) {
                throw .invalidRequest("header '\(field.name)' is set by the client")
            }
            fields.add(name: field.name, value: field.value)
        }
        if !headers.contains("User-Agent") { fields.add(name: "User-Agent", value: userAgent) }
        if !body.isEmpty || method == .post || method == .put || method == .patch {
            fields.add(name: "Content-Length", value: String(body.count))
        }
        fields.add(name: "Connection", value: "close")
        do {
            return try HTTPRequestEncoder.encode(method: method, target: url.target, headers: fields, body: body)
        } catch {
            throw .invalidRequest(error.detail)
        }
    }

    /// `duration` in nanoseconds, at least 1 and saturating instead of trapping on huge values.
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 1 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return UInt64.max / 2 }
        return max(1, min(whole &+ UInt64(max(0, attoseconds) / 1_000_000_000), UInt64.max / 2))
    }
}
