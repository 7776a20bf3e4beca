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
    /// Strong: the cycle with `Channel.handler` is broken when the channel closes. (`unowned`
    /// would cost a checked retain on every access.)
    private let channel: Channel
    private let app: HTTPApplication
    private let context: LoopContext
    private var parser: HTTPParser

    /// Requests whose responses are not written yet, in arrival order.
    private var pending: [RequestContext] = []
    private var nextSequence = 0
    /// When the current partial request's first byte arrived (nil: nothing buffered).
    private var partialSince: UInt64?
    private var lastActivity: UInt64
    private var stalledOutbound = 0
    private var stalledSince: UInt64 = 0
    /// No more requests are read: an error response is on its way, or we are draining.
    private var closing = false
    private var draining = false
    /// An upgrade request is in flight: bytes after it belong to the next protocol, so no
    /// further request is parsed.
    private var upgrading = false

    init(channel: Channel, app: HTTPApplication, context: LoopContext) {
        self.channel = channel
        self.app = app
        self.context = context
        parser = HTTPParser(limits: app.config.parserLimits)
        lastActivity = channel.loop.now
    }

    /// Whether `100 Continue` went out for the request being read.
    private var continueSent = false
    private static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    // MARK: input

    func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer) {
        guard !closing else { return }
        lastActivity = channel.loop.now
        if partialSince == nil { partialSince = lastActivity }
        parser.append(UnsafeRawBufferPointer(bytes))
        processBuffered()
    }

    /// Takes complete requests from the parser while the pipeline has room.
    private func processBuffered() {
        while !closing && !draining && !upgrading {
            if pending.count >= app.config.maxPipelinedRequests {
                channel.pauseReading()
                return
            }
            switch parser.next() {
            case .request(let request):
                continueSent = false
                partialSince = parser.hasPartialRequest ? channel.loop.now : nil
                if request.isUpgrade { upgrading = true; partialSince = nil }
                dispatch(request)
            case .needMoreData:
                if !parser.hasPartialRequest { partialSince = nil }
                // Only with no earlier response outstanding: the interim response must not
                // overtake a pipelined request's final one.
                if parser.awaitsContinue && !continueSent && pending.isEmpty {
                    continueSent = true
                    channel.write(Self.continueResponse)
                }
                return
            case .error(let error):
                fail(error)
                return
            }
        }
    }

    /// `consuming`: the request moves into its context instead of being copied (a copy retains
    /// every string and array in it).
    private func dispatch(_ request: consuming HTTPRequest) {
        let loop = channel.loop
        let incoming = request.headers["X-Request-ID"]
        let requestID = incoming.flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? context.requestIDs.next()
        let sequence = nextSequence
        nextSequence += 1
        app.requestsInFlight.add(1, shard: loop.index)

        switch app.router.match(request.method, path: request.path) {
        case .found(let route, let params, _):
            let ctx = RequestContext(request: request, params: params, route: route, requestID: requestID, loop: loop, logger: app.logger,
                                     sequence: sequence, peer: channel.peer)
            pending.append(ctx)
            let responder = Responder(connection: self, sequence: sequence, loop: loop)
            switch route.handler {
            case .callback(let handler): handler(ctx, responder)
            case .async(let rule, let handler): app.runAsync(rule, handler, context: ctx, responder: responder)
            }
        case .notFound:
            let ctx = RequestContext(request: request, params: [:], route: app.unmatched, requestID: requestID, loop: loop, logger: app.logger, sequence: sequence, peer: channel.peer)
            pending.append(ctx)
            complete(sequence: sequence, response: ctx.problem(404, "not_found", "no route for \(ctx.request.path)"))
        case .methodNotAllowed(let allow):
            let ctx = RequestContext(request: request, params: [:], route: app.unmatched, requestID: requestID, loop: loop, logger: app.logger, sequence: sequence, peer: channel.peer)
            pending.append(ctx)
            var r = ctx.problem(405, "method_not_allowed", "\(ctx.request.method.name) is not allowed on \(ctx.request.path)")
            r.headers.add(name: "Allow", value: allow.joined(separator: ", "))
            complete(sequence: sequence, response: r)
        }
    }

    /// A request the parser refused: answer it, then close (the stream can no longer be trusted).
    private func fail(_ error: HTTPParseError) {
        closing = true
        channel.pauseReading()
        let sequence = nextSequence
        nextSequence += 1
        app.requestsInFlight.add(1, shard: channel.loop.index)
        let placeholder = HTTPRequest(method: .get, target: "", path: "", query: nil, version: HTTPVersion(major: 1, minor: 1),
                                      headers: HTTPHeaders(), body: [], keepAlive: false, isUpgrade: false)
        let ctx = RequestContext(request: placeholder, params: [:], route: app.unmatched, requestID: context.requestIDs.next(),
                                 loop: channel.loop, logger: app.logger, sequence: sequence, peer: channel.peer)
        pending.append(ctx)
        var p = Problem(error)
        p.requestID = ctx.requestID
        var r = Response.problem(p)
        r.closeConnection = true
        complete(sequence: sequence, response: r)
    }

    // MARK: output

    /// A handler finished. Writes every response that is now at the head of the line.
    func complete(sequence: Int, response: Response) {
        // Unknown sequence: already answered and written, or the connection closed.
        guard !pending.isEmpty, let i = pending.firstIndex(where: { $0.sequence == sequence }), pending[i].response == nil else { return }
        pending[i].response = response
        guard i == 0 else { return }
        let date = context.currentDate()
        let loopIndex = channel.loop.index
        var mustClose = false
        while let first = pending.first, let response = first.response {
            pending.removeFirst()
            first.response = nil
            app.requestsInFlight.add(-1, shard: loopIndex)
            var keepAlive = first.request.keepAlive && !response.closeConnection
            // The last answer before a close says so, for the client's sake.
            if (draining || closing) && pending.isEmpty { keepAlive = false }
            let headOnly = first.request.method == .head
            let isHTTP10 = first.request.version.minor == 0
            let idField = HTTPHeaders.Field(name: "X-Request-ID", value: first.requestID)
            let bytes = channel.withOutput { out -> Int in
                let before = out.count
                response.body.withUnsafeBytes { body in
                    if let prepared = response.prepared, !(keepAlive && isHTTP10) {
                        HTTPResponseEncoder.encode(prepared: prepared, body: body, keepAlive: keepAlive, headOnly: headOnly, date: date, extra: idField, into: &out)
                    } else {
                        var head = HTTPResponseHead(status: response.status, headers: response.headers)
                        // HTTP/1.0 keep-alive must be confirmed explicitly.
                        if keepAlive && isHTTP10 { head.headers.add(name: "Connection", value: "keep-alive") }
                        HTTPResponseEncoder.encode(head, body: body, keepAlive: keepAlive, headOnly: headOnly, date: date, extra: idField, into: &out)
                    }
                }
                return out.count - before
            }
            let elapsed = Int(channel.loop.now &- first.startedAt)
            app.recordResponse(route: first.routeEntry, status: response.status, nanoseconds: elapsed, loop: loopIndex)
            if app.config.accessLog {
                logAccess(first, status: response.status, bytes: bytes, nanoseconds: elapsed)
            }
            if !keepAlive {
                mustClose = true
                break
            }
            if response.status == 101, let upgrade = response.upgrade {
                switchProtocols(upgrade)
                return
            }
        }
        if mustClose {
            closing = true
            app.requestsInFlight.add(-pending.count, shard: loopIndex)
            pending.removeAll()
            channel.close(.afterFlush)
            return
        }
        if upgrading && pending.isEmpty {
            // The upgrade was refused: carry on with HTTP.
            upgrading = false
        }
        if pending.count < app.config.maxPipelinedRequests {
            channel.resumeReading()
            processBuffered()
        }
    }

    /// The 101 is queued: from here on the channel speaks the new protocol.
    private func switchProtocols(_ upgrade: ProtocolUpgrade) {
        app.requestsInFlight.add(-pending.count, shard: channel.loop.index)
        pending.removeAll()
        closing = true
        let leftover = parser.takeBufferedBytes()
        let handler = upgrade.makeHandler(channel)
        channel.handler = handler
        handler.channelActive(channel)
        if !leftover.isEmpty {
            var bytes = leftover
            bytes.withUnsafeMutableBytes { handler.channelRead(channel, $0) }
        }
        channel.resumeReading()
    }

    private func logAccess(_ p: RequestContext, status: Int, bytes: Int, nanoseconds: Int) {
        app.accessLogger.info("request", metadata: [
            "request_id": .string(p.requestID),
            "method": .string(p.request.method.name),
            "path": .string(p.request.path),
            "route": .string(p.route),
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
