// Incremental HTTP/1.1 response parser (RFC 9112), for the hub's own HTTP client: buffering,
// the framing state machine, and end-of-stream handling.

/// A resumable HTTP/1.1 response parser.
///
/// Feed it whatever the socket delivered with `append`, call `next()` until it returns
/// `.needMoreData` or `.error`, and call `finish()` when the peer closes: a body delimited by the
/// close is complete only then, and any other message still open at that point is truncated.
/// As with `HTTPParser`, the outcome never depends on how the input was split into `append`
/// calls (the tests feed every sample byte by byte and at every split point).
///
/// It shares the request parser's grammar pieces (field lines, chunk-size lines, framing
/// fields) and its strictness: bare LF, obs-fold, conflicting Content-Length, and
/// Transfer-Encoding together with Content-Length are errors, because a client that guesses
/// where a response ends can be fed a forged second response. Interim 1xx responses are
/// skipped; a 101 is returned (bodiless) and whatever follows it is not HTTP any more.
///
/// Errors are sticky, like the request parser's.
public struct HTTPResponseParser: Sendable {
    private enum State {
        case statusLine
        case headerLines
        case fixedBody(Int)
        case untilClose
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailerLines
    }

    private let limits: HTTPResponseParserLimits
    /// The method of the request the next response answers: a response to HEAD has no body,
    /// whatever its Content-Length says (RFC 9110 §9.3.2). Set it before each request.
    public var requestMethod: HTTPMethod
    private var buffer: [UInt8] = []
    /// First byte not yet consumed.
    private var readIndex = 0
    /// Where the LF search of the current line resumes, so a line trickling in byte by byte
    /// is scanned once in total.
    private var scanIndex = 0
    private var state = State.statusLine
    private var failure: HTTPResponseParseError?
    private var head = ResponseHeadBuilder()
    /// Bytes of the current head (or trailer section) consumed so far, for the head budget.
    private var sectionBytes = 0
    private var trailerCount = 0
    private var interimCount = 0
    private var body: [UInt8] = []
    /// `finish()` was called: no byte will follow the buffered ones.
    private var atEOF = false

    public init(limits: HTTPResponseParserLimits = .init(), requestMethod: HTTPMethod = .get) {
        // Re-run the clamping initializer: the limits' properties are settable.
        self.limits = HTTPResponseParserLimits(maxHeadBytes: limits.maxHeadBytes, maxHeaderCount: limits.maxHeaderCount,
                                               maxBodyBytes: limits.maxBodyBytes, maxChunkLineBytes: limits.maxChunkLineBytes,
                                               maxInterimResponses: limits.maxInterimResponses)
        self.requestMethod = requestMethod
    }

    // MARK: Input

    /// Buffers bytes received from the peer. Ignored after an error or `finish()`.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, !atEOF else { return }
        makeRoom()
        buffer.append(contentsOf: bytes)
    }

    /// Buffers bytes received from the peer.
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Records that the peer closed the connection. The next `next()` completes a body that
    /// runs until the close, reports `truncated` for any other unfinished response, and
    /// `no_response` when the stream ended where a response should have started.
    public mutating func finish() {
        atEOF = true
    }

    /// Bytes appended but not yet consumed.
    public var bufferedByteCount: Int { buffer.count &- readIndex }

    /// Drops consumed bytes when that is at most as much work as what was consumed, so
    /// compaction stays amortised O(1) per byte.
    private mutating func makeRoom() {
        guard readIndex > 0 else { return }
        let unconsumed = buffer.count &- readIndex
        if unconsumed == 0 {
            buffer.removeAll(keepingCapacity: true)
        } else if readIndex >= unconsumed {
            buffer.removeSubrange(0..<readIndex)
        } else {
            return
        }
        scanIndex &-= readIndex
        readIndex = 0
    }

    private mutating func resetMessage() {
        state = .statusLine
        scanIndex = readIndex
        sectionBytes = 0
        trailerCount = 0
        interimCount = 0
        body = []
        head = ResponseHeadBuilder()
    }

    // MARK: Output

    /// Parses as far as the buffered bytes allow and returns the next complete response,
    /// `.needMoreData`, or the (sticky) error.
    public mutating func next() -> HTTPResponseParseResult {
        if let failure { return .error(failure) }
        // A second reference to the storage, not a copy: `buffer` is not written during `run`.
        let bytes = buffer
        let outcome = bytes.withUnsafeBufferPointer { run($0) }
        switch outcome {
        case .needMoreData:
            guard atEOF else { return .needMoreData }
            return endOfStream()
        case .error(let error):
            failure = error
            return .error(error)
        case .response:
            let response = head.makeResponse(body: body, untilClose: false)
            resetMessage()
            return .response(response)
        }
    }

    /// The verdict once the buffered bytes are exhausted and the peer has closed.
    private mutating func endOfStream() -> HTTPResponseParseResult {
        let error: HTTPResponseParseError
        switch state {
        case .untilClose:
            let response = head.makeResponse(body: body, untilClose: true)
            resetMessage()
            return .response(response)
        case .statusLine where bufferedByteCount == 0 && interimCount == 0:
            error = .noResponse
        case .statusLine, .headerLines:
            error = .truncated("connection closed inside the response head")
        case .fixedBody(let length):
            error = .truncated("connection closed after \(bufferedByteCount) of \(length) body bytes")
        case .chunkSize, .chunkData, .chunkDataEnd, .trailerLines:
            error = .truncated("connection closed inside the chunked body")
        }
        failure = error
        return .error(error)
    }

    private enum Outcome {
        case needMoreData
        case error(HTTPResponseParseError)
        case response
    }

    /// Advances the state machine over `buf` until a response completes, input runs out, or
    /// an error is found.
    private mutating func run(_ buf: UnsafeBufferPointer<UInt8>) -> Outcome {
        let end = buf.count
        while true {
            switch state {
            case .statusLine:
                if let outcome = statusLine(buf, end) { return outcome }
            case .headerLines:
                if let outcome = headerLine(buf, end) { return outcome }
            case .fixedBody(let length):
                guard end &- readIndex >= length else { return .needMoreData }
                body = Array(UnsafeBufferPointer(rebasing: buf[readIndex..<(readIndex &+ length)]))
                readIndex &+= length
                return .response
            case .untilClose:
                let available = end &- readIndex
                guard available > 0 else { return .needMoreData }
                guard available <= limits.maxBodyBytes &- body.count else {
                    return .error(HTTPResponseParseError(.payloadTooLarge(limits.maxBodyBytes)))
                }
                body.append(contentsOf: UnsafeBufferPointer(rebasing: buf[readIndex..<end]))
                readIndex = end
                return .needMoreData
            case .chunkSize:
                if let outcome = chunkSizeLine(buf, end) { return outcome }
            case .chunkData(let remaining):
                let available = end &- readIndex
                guard available > 0 else { return .needMoreData }
                let take = min(available, remaining)
                body.append(contentsOf: UnsafeBufferPointer(rebasing: buf[readIndex..<(readIndex &+ take)]))
                readIndex &+= take
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining &- take)
            case .chunkDataEnd:
                guard end > readIndex else { return .needMoreData }
                let first = buf[readIndex]
                if first == ASCII.lf { return .error(HTTPResponseParseError(.bareLF)) }
                if first != ASCII.cr { return .error(HTTPResponseParseError(.invalidChunkTerminator)) }
                guard end > readIndex &+ 1 else { return .needMoreData }
                if buf[readIndex &+ 1] != ASCII.lf { return .error(HTTPResponseParseError(.bareCR)) }
                readIndex &+= 2
                scanIndex = readIndex
                state = .chunkSize
            case .trailerLines:
                if let outcome = trailerLine(buf, end) { return outcome }
            }
        }
    }

    // MARK: Lines

    private enum Line {
        case complete(contentEnd: Int, next: Int)
        case incomplete
        case overLimit
        case bareLF
    }

    /// Finds the LF ending the line at `readIndex`, searching only up to `windowEnd` so that a
    /// limit is enforced without waiting for a line break that may never come.
    private mutating func findLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int, windowEnd: Int) -> Line {
        let searchEnd = min(end, windowEnd)
        let from = max(scanIndex, readIndex)
        guard let lf = HTTPSyntax.firstLF(in: buf, from: from, to: searchEnd) else {
            scanIndex = max(from, searchEnd)
            return end >= windowEnd ? .overLimit : .incomplete
        }
        // Strict CRLF, as in the request parser: parsers that disagree on line ends disagree on
        // where a response ends.
        if lf == readIndex || buf[lf &- 1] != ASCII.cr { return .bareLF }
        return .complete(contentEnd: lf &- 1, next: lf &+ 1)
    }

    private mutating func consumeLine(next: Int) {
        sectionBytes &+= next &- readIndex
        readIndex = next
        scanIndex = next
    }

    private mutating func statusLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        guard readIndex < end else { return .needMoreData }
        let windowEnd = readIndex &+ (limits.maxHeadBytes &- sectionBytes)
        let line = findLine(buf, end, windowEnd: windowEnd)
        // The prefix check judges the first bytes whether or not the line is complete, before
        // any verdict on the line, so the first bad byte decides however the input was split.
        if let error = ResponseHeadBuilder.checkPrefix(buf, from: readIndex, to: min(end, windowEnd)) { return .error(error) }
        switch line {
        case .incomplete: return .needMoreData
        case .overLimit: return .error(HTTPResponseParseError(.headersTooLarge(limits.maxHeadBytes)))
        case .bareLF: return .error(HTTPResponseParseError(.bareLF))
        case .complete(let contentEnd, let next):
            if let error = head.parseStatusLine(buf, readIndex, contentEnd) { return .error(error) }
            consumeLine(next: next)
            state = .headerLines
            return nil
        }
    }

    private mutating func headerLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        let windowEnd = readIndex &+ (limits.maxHeadBytes &- sectionBytes)
        switch findLine(buf, end, windowEnd: windowEnd) {
        case .incomplete: return .needMoreData
        case .overLimit: return .error(HTTPResponseParseError(.headersTooLarge(limits.maxHeadBytes)))
        case .bareLF: return .error(HTTPResponseParseError(.bareLF))
        case .complete(let contentEnd, let next):
            let start = readIndex
            consumeLine(next: next)
            if contentEnd == start { return endOfHead() }
            if head.headers.count >= limits.maxHeaderCount {
                return .error(HTTPResponseParseError(.tooManyHeaders(limits.maxHeaderCount)))
            }
            if let error = head.addField(buf, start, contentEnd) { return .error(HTTPResponseParseError(error)) }
            return nil
        }
    }

    private mutating func endOfHead() -> Outcome? {
        if head.isInterim {
            // 100 Continue, 103 Early Hints, …: informational only; the final response follows.
            interimCount &+= 1
            if interimCount > limits.maxInterimResponses {
                return .error(.tooManyInterimResponses(limits.maxInterimResponses))
            }
            head = ResponseHeadBuilder()
            sectionBytes = 0
            state = .statusLine
            return nil
        }
        switch head.framing(requestMethod: requestMethod, maxBodyBytes: limits.maxBodyBytes) {
        case .failure(let error): return .error(HTTPResponseParseError(error))
        case .success(.none): return .response
        case .success(.length(let length)): state = .fixedBody(length)
        case .success(.chunked): state = .chunkSize
        case .success(.untilClose): state = .untilClose
        }
        return nil
    }

    // MARK: Chunked body (RFC 9112 §7.1)

    private mutating func chunkSizeLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        let windowEnd = readIndex &+ limits.maxChunkLineBytes &+ 2
        switch findLine(buf, end, windowEnd: windowEnd) {
        case .incomplete: return .needMoreData
        case .overLimit:
            return .error(HTTPResponseParseError(.invalidChunkExtension("chunk size line exceeds \(limits.maxChunkLineBytes) bytes")))
        case .bareLF: return .error(HTTPResponseParseError(.bareLF))
        case .complete(let contentEnd, let next):
            let size: UInt64
            switch ChunkSizeLine.parse(buf, readIndex, contentEnd) {
            case .failure(let error): return .error(HTTPResponseParseError(error))
            case .success(let s): size = s
            }
            readIndex = next
            scanIndex = next
            if size == 0 {
                state = .trailerLines
                sectionBytes = 0
                trailerCount = 0
                return nil
            }
            // Decided from the size line, before the data is buffered.
            guard size <= UInt64(limits.maxBodyBytes &- body.count) else {
                return .error(HTTPResponseParseError(.payloadTooLarge(limits.maxBodyBytes)))
            }
            state = .chunkData(remaining: Int(size))
            return nil
        }
    }

    /// Trailer fields are validated and bounded like header fields, then dropped: a client
    /// that merged them into the headers would let them override fields already acted upon.
    private mutating func trailerLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        let windowEnd = readIndex &+ (limits.maxHeadBytes &- sectionBytes)
        switch findLine(buf, end, windowEnd: windowEnd) {
        case .incomplete: return .needMoreData
        case .overLimit: return .error(HTTPResponseParseError(.headersTooLarge(limits.maxHeadBytes)))
        case .bareLF: return .error(HTTPResponseParseError(.bareLF))
        case .complete(let contentEnd, let next):
            let start = readIndex
            consumeLine(next: next)
            if contentEnd == start { return .response }
            if trailerCount >= limits.maxHeaderCount {
                return .error(HTTPResponseParseError(.tooManyHeaders(limits.maxHeaderCount)))
            }
            if case .failure(let error) = HeaderFieldLine.split(buf, start, contentEnd) { return .error(HTTPResponseParseError(error)) }
            trailerCount &+= 1
            return nil
        }
    }
}
