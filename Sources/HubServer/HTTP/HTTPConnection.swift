import HubHTTP
import HubIO
import HubTelemetry
import Logging

/// The HTTP/1.1 side of one connection: feeds bytes to the parser, dispatches requests to
/// routes, writes responses in request order (pipelining), and enforces the deadlines.
///
/// Deadlines are checked by the loop's sweep (`channelTick`), not by timers per connection:
/// - a request must arrive whole within `requestHeadTimeout` (head) / `requestBodyTimeout`
///   (body) of its first byte, else 408 and close (slowloris);
/// - an idle keep-alive connection closes after `keepAliveTimeout`;
/// - output that does not move for `writeTimeout` closes the connection.
final class HTTPConnection: ChannelHandler {
    private unowned let channel: Channel
    private let app: HTTPApplication
    private let context: LoopContext
    private var parser: HTTPParser

    /// A request whose response is not written yet.
    private struct Pending {
        var sequence: Int
        var route: Route
        var method: HTTPMethod
        var path: String
        var requestID: String
        var keepAlive: Bool
        var startedAt: UInt64
        var response: Response?
    }

    private var pending: [Pending] = []
    private var nextSequence = 0
    /// When the current partial request's first byte arrived (nil: nothing buffered).
    private var partialSince: UInt64?
    private var lastActivity: UInt64
    private var stalledOutbound = 0
    private var stalledSince: UInt64 = 0
    /// No more requests are read: an error response is on its way, or we are draining.
    private var closing = false
    private var draining = false

    init(channel: Channel, app: HTTPApplication, context: LoopContext) {
        self.channel = channel
        self.app = app
        self.context = context
        parser = HTTPParser(limits: app.config.parserLimits)
        lastActivity = channel.loop.now
    }

    // MARK: input

    func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
        guard !closing else { return }
        lastActivity = channel.loop.now
        if partialSince == nil { partialSince = lastActivity }
        parser.append(bytes)
        processBuffered()
    }

    /// Takes complete requests from the parser while the pipeline has room.
    private func processBuffered() {
        while !closing && !draining {
            if pending.count >= app.config.maxPipelinedRequests {
                channel.pauseReading()
                return
            }
            switch parser.next() {
            case .request(let request):
                partialSince = parser.bufferedByteCount > 0 ? channel.loop.now : nil
                dispatch(request)
            case .needMoreData:
                if parser.bufferedByteCount == 0 { partialSince = nil }
                return
            case .error(let error):
                fail(error)
                return
            }
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        let loop = channel.loop
        let incoming = request.headers["X-Request-ID"]
        let requestID = incoming.flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? context.requestIDs.next()
        let sequence = nextSequence
        nextSequence += 1
        app.requestsInFlight.add(1, shard: loop.index)

        switch app.router.match(request.method, path: request.path) {
        case .found(let route, let params, _):
            pending.append(Pending(sequence: sequence, route: route, method: request.method, path: request.path,
                                   requestID: requestID, keepAlive: request.keepAlive, startedAt: loop.now))
            let ctx = RequestContext(request: request, params: params, route: route.pattern, requestID: requestID, loop: loop, logger: app.logger)
            route.handler(ctx, Responder(connection: self, sequence: sequence, loop: loop))
        case .notFound:
            pending.append(Pending(sequence: sequence, route: app.unmatched, method: request.method, path: request.path,
                                   requestID: requestID, keepAlive: request.keepAlive, startedAt: loop.now))
            complete(sequence: sequence, response: problem(404, "not_found", "no route for \(request.path)", requestID: requestID, path: request.path))
        case .methodNotAllowed(let allow):
            pending.append(Pending(sequence: sequence, route: app.unmatched, method: request.method, path: request.path,
                                   requestID: requestID, keepAlive: request.keepAlive, startedAt: loop.now))
            var r = problem(405, "method_not_allowed", "\(request.method.name) is not allowed on \(request.path)", requestID: requestID, path: request.path)
            r.headers.add(name: "Allow", value: allow.joined(separator: ", "))
            complete(sequence: sequence, response: r)
        }
    }

    /// A request the parser refused: answer it, then close (the stream can no longer be trusted).
    private func fail(_ error: HTTPParseError) {
        closing = true
        channel.pauseReading()
        let requestID = context.requestIDs.next()
        let sequence = nextSequence
        nextSequence += 1
        app.requestsInFlight.add(1, shard: channel.loop.index)
        pending.append(Pending(sequence: sequence, route: app.unmatched, method: .get, path: "", requestID: requestID,
                               keepAlive: false, startedAt: channel.loop.now))
        var p = Problem(error)
        p.requestID = requestID
        var r = Response.problem(p)
        r.closeConnection = true
        complete(sequence: sequence, response: r)
    }

    private func problem(_ status: Int, _ code: String, _ detail: String, requestID: String, path: String) -> Response {
        var p = Problem(status: status, code: code, detail: detail)
        p.requestID = requestID
        p.instance = path
        return .problem(p)
    }

    // MARK: output

    /// A handler finished. Writes every response that is now at the head of the line.
    func complete(sequence: Int, response: Response) {
        guard let i = pending.firstIndex(where: { $0.sequence == sequence }) else { return }
        pending[i].response = response
        guard i == 0 else { return }
        let date = context.currentDate()
        let loopIndex = channel.loop.index
        var mustClose = false
        while let first = pending.first, let response = first.response {
            pending.removeFirst()
            app.requestsInFlight.add(-1, shard: loopIndex)
            var keepAlive = first.keepAlive && !response.closeConnection
            // The last answer before a close says so, for the client's sake.
            if (draining || closing) && pending.isEmpty { keepAlive = false }
            var head = HTTPResponseHead(status: response.status, headers: response.headers)
            head.headers.add(name: "X-Request-ID", value: first.requestID)
            let bytes = channel.withOutput { out -> Int in
                let before = out.count
                response.body.withUnsafeBytes { body in
                    HTTPResponseEncoder.encode(head, body: body, keepAlive: keepAlive, headOnly: first.method == .head, date: date, into: &out)
                }
                return out.count - before
            }
            let elapsed = Int(channel.loop.now &- first.startedAt)
            app.recordResponse(route: first.route, status: response.status, nanoseconds: elapsed, loop: loopIndex)
            if app.config.accessLog {
                logAccess(first, status: response.status, bytes: bytes, nanoseconds: elapsed)
            }
            if !keepAlive {
                mustClose = true
                break
            }
        }
        if mustClose {
            closing = true
            for _ in pending { app.requestsInFlight.add(-1, shard: loopIndex) }
            pending.removeAll()
            channel.close(.afterFlush)
            return
        }
        if pending.count < app.config.maxPipelinedRequests {
            channel.resumeReading()
            processBuffered()
        }
    }

    private func logAccess(_ p: Pending, status: Int, bytes: Int, nanoseconds: Int) {
        app.accessLogger.info("request", metadata: [
            "request_id": .string(p.requestID),
            "method": .string(p.method.name),
            "path": .string(p.path),
            "route": .string(p.route.pattern),
            "status": .stringConvertible(status),
            "bytes": .stringConvertible(bytes),
            "duration_ms": .stringConvertible(Double(nanoseconds) / 1e6),
            "peer": .string(channel.peer),
        ])
    }

    // MARK: lifecycle

    func channelReadEOF(_ channel: Channel) {
        // Half-close: answer what is in flight, then close.
        closing = true
        if pending.isEmpty { channel.close(.afterFlush) }
    }

    func channelDrain(_ channel: Channel) {
        draining = true
        if pending.isEmpty { channel.close(.afterFlush) }
    }

    func channelTick(_ channel: Channel, now: UInt64) {
        let config = app.config
        // Output that does not move means a client that stopped reading.
        let queued = channel.outboundBytes
        if queued > 0 {
            if queued != stalledOutbound { stalledOutbound = queued; stalledSince = now }
            else if now &- stalledSince > UInt64(config.writeTimeout * 1e9) {
                app.logger.debug("closing connection: write timeout", metadata: ["peer": .string(channel.peer)])
                channel.close(.immediately)
                return
            }
        } else {
            stalledOutbound = 0
        }
        guard !closing else { return }
        if let since = partialSince {
            let limit = parser.isReadingBody ? config.requestBodyTimeout : config.requestHeadTimeout
            if now &- since > UInt64(limit * 1e9) {
                fail(HTTPParseError(status: 408, code: "request_timeout", detail: "the request did not arrive within \(Int(limit)) s"))
            }
            return
        }
        if pending.isEmpty && now &- lastActivity > UInt64(config.keepAliveTimeout * 1e9) {
            channel.close(.afterFlush)
        }
    }

    func channelClosed(_ channel: Channel, error: Error?) {
        if !pending.isEmpty {
            app.requestsInFlight.add(-pending.count, shard: channel.loop.index)
            pending.removeAll()
        }
        if let error {
            app.logger.debug("connection closed with error", metadata: ["peer": .string(channel.peer), "error": .string("\(error)")])
        }
    }
}
