// Incremental HTTP/1.1 request parser (RFC 9112): input buffering and the framing state machine.

/// A resumable, allocation-aware HTTP/1.1 request parser.
///
/// Feed it whatever the socket delivered with `append`, then call `next()` until it returns
/// `.needMoreData` (or `.error`). Pipelined requests come out in order. The result never
/// depends on how the input was split into `append` calls: every check that runs on an
/// incomplete line (length limits, the early method check) is designed to reach the same
/// verdict as the check on the complete line, and the tests feed every sample byte by byte
/// and at every split point to hold that.
///
/// Buffering: one `[UInt8]` whose capacity is reused across requests. Consumed bytes are
/// dropped by advancing `readIndex`; the array is compacted (one memmove of the unconsumed
/// tail) only when that is cheaper than growing it, so the steady state does no allocation
/// beyond the Strings and body of each request.
///
/// Errors are sticky: after `.error` the byte stream has no trustworthy request boundary left,
/// so the parser keeps returning the same error and the caller closes the connection.
public struct HTTPParser: Sendable {
    /// Where the state machine is within the current message.
    private enum State {
        case requestLine
        case headerLines
        case fixedBody(Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailerLines
    }

    private let limits: HTTPParserLimits
    private var buffer: [UInt8] = []
    /// First byte not yet consumed; everything before it belongs to returned requests or to
    /// parts of the current one that were already turned into Strings / body bytes.
    private var readIndex = 0
    /// Where the LF search for the current line resumes, so that a line trickling in byte by
    /// byte is scanned once in total, not once per `next()`.
    private var scanIndex = 0
    /// Where the early method check of an incomplete request line resumes; nil once the method
    /// is known to be well-formed (the check reached SP or CR).
    private var methodScanIndex: Int? = 0
    private var state = State.requestLine
    private var failure: HTTPParseError?
    private var head = RequestHeadBuilder()
    /// Bytes of the current head (or trailer section) consumed so far, for the 431 budget.
    private var sectionBytes = 0
    private var trailerCount = 0
    private var body: [UInt8] = []

    /// Above this capacity an emptied buffer is released rather than kept: after one 1 MiB
    /// upload an idle keep-alive connection should not pin a megabyte.
    private static let retainedCapacity = 64 * 1024

    public init(limits: HTTPParserLimits = .init()) {
        // Re-run the clamping initializer: the limits' properties are settable.
        self.limits = HTTPParserLimits(maxRequestLineBytes: limits.maxRequestLineBytes,
                                       maxHeaderBytes: limits.maxHeaderBytes,
                                       maxHeaderCount: limits.maxHeaderCount,
                                       maxBodyBytes: limits.maxBodyBytes,
                                       maxChunkLineBytes: limits.maxChunkLineBytes)
        head.reset()
    }

    // MARK: Input

    /// Buffers bytes received from the peer (copied once, with memcpy). Ignored once the
    /// parser has failed: the connection is about to close and must not grow its buffer.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        makeRoom(for: bytes.count)
        buffer.append(contentsOf: bytes)
    }

    /// Buffers bytes received from the peer.
    public mutating func append(_ bytes: [UInt8]) {
        guard failure == nil else { return }
        makeRoom(for: bytes.count)
        buffer.append(contentsOf: bytes)
    }

    /// Bytes appended but not yet consumed by a returned request or the one in progress.
    public var bufferedByteCount: Int { buffer.count &- readIndex }

    /// True while a request has started but is not complete (some bytes of it were received).
    /// Not the same as `bufferedByteCount > 0`: completed header lines are consumed eagerly.
    public var hasPartialRequest: Bool {
        if case .requestLine = state { return bufferedByteCount > 0 }
        return true
    }

    /// True once the current request's head is complete and its body is being read: the
    /// connection then applies the body deadline instead of the head deadline.
    public var isReadingBody: Bool {
        switch state {
        case .requestLine, .headerLines: return false
        default: return true
        }
    }

    /// True while the current request's head asked for `100 Continue` (`Expect: 100-continue`)
    /// and its body has not been completely received: the server should send the interim
    /// response once, so the client does not wait before sending the body.
    public var awaitsContinue: Bool { isReadingBody && head.expectsContinue }

    /// Removes and returns every unconsumed byte, and forgets any partially parsed request.
    ///
    /// Meant for protocol switches: right after `next()` returned an upgrade request, these
    /// are the first bytes of the new protocol (e.g. WebSocket frames the client sent without
    /// waiting for 101). Called mid-request it returns the unparsed remainder; the parts
    /// already parsed are gone. A failed parser stays failed.
    public mutating func takeBufferedBytes() -> [UInt8] {
        let rest = Array(buffer[readIndex...])
        buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
        readIndex = 0
        resetMessage()
        return rest
    }

    /// Drops consumed bytes before appending `incoming` more. Compaction moves the unconsumed
    /// tail to the front when that is at most as much work as what was consumed (amortised
    /// O(1) per byte) or when it avoids growing the array.
    private mutating func makeRoom(for incoming: Int) {
        guard readIndex > 0 else { return }
        let unconsumed = buffer.count &- readIndex
        if unconsumed == 0 {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
        } else if readIndex >= unconsumed || buffer.count &+ incoming > buffer.capacity {
            buffer.removeSubrange(0..<readIndex)
        } else {
            return
        }
        scanIndex &-= readIndex
        if let m = methodScanIndex { methodScanIndex = m &- readIndex }
        readIndex = 0
    }

    private mutating func resetMessage() {
        state = .requestLine
        scanIndex = readIndex
        methodScanIndex = readIndex
        sectionBytes = 0
        trailerCount = 0
        body = []
        head.reset()
    }

    // MARK: Output

    /// Parses as far as the buffered bytes allow and returns the next complete request,
    /// `.needMoreData`, or the (sticky) error.
    public mutating func next() -> HTTPParseResult {
        if let failure { return .error(failure) }
        // Work on a second reference to the storage: the state machine below mutates other
        // stored properties while reading the bytes, and `buffer` itself is never written
        // during `next()`, so this costs a retain, not a copy.
        let bytes = buffer
        let outcome = bytes.withUnsafeBufferPointer { run($0) }
        switch outcome {
        case .needMoreData:
            return .needMoreData
        case .error(let error):
            failure = error
            return .error(error)
        case .request:
            let request = head.makeRequest(body: body)
            resetMessage()
            return .request(request)
        }
    }

    private enum Outcome {
        case needMoreData
        case error(HTTPParseError)
        case request
    }

    /// Advances the state machine over `buf` until a request completes, input runs out, or
    /// an error is found.
    private mutating func run(_ buf: UnsafeBufferPointer<UInt8>) -> Outcome {
        let end = buf.count
        while true {
            switch state {
            case .requestLine:
                if let outcome = requestLine(buf, end) { return outcome }
            case .headerLines:
                if let outcome = headerLine(buf, end) { return outcome }
            case .fixedBody(let length):
                // Wait for the whole body and copy it once, instead of growing `body` piecewise.
                guard end &- readIndex >= length else { return .needMoreData }
                body = Array(UnsafeBufferPointer(rebasing: buf[readIndex..<(readIndex &+ length)]))
                readIndex &+= length
                return .request
            case .chunkSize:
                if let outcome = chunkSizeLine(buf, end) { return outcome }
            case .chunkData(let remaining):
                // Chunk data is moved into `body` as it arrives so the raw framing never has to
                // be buffered: memory stays bounded by maxBodyBytes whatever the chunk sizes.
                let available = end &- readIndex
                guard available > 0 else { return .needMoreData }
                let take = min(available, remaining)
                body.append(contentsOf: UnsafeBufferPointer(rebasing: buf[readIndex..<(readIndex &+ take)]))
                readIndex &+= take
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining &- take)
            case .chunkDataEnd:
                guard end > readIndex else { return .needMoreData }
                let first = buf[readIndex]
                if first == ASCII.lf { return .error(.bareLF) }
                if first != ASCII.cr { return .error(.invalidChunkTerminator) }
                guard end > readIndex &+ 1 else { return .needMoreData }
                if buf[readIndex &+ 1] != ASCII.lf { return .error(.bareCR) }
                readIndex &+= 2
                scanIndex = readIndex
                state = .chunkSize
            case .trailerLines:
                if let outcome = trailerLine(buf, end) { return outcome }
            }
        }
    }

    // MARK: Lines

    /// Result of looking for the end of the line that starts at `readIndex`.
    private enum Line {
        /// The line's content ends at `contentEnd` (its CR) and the next line starts at `next`.
        case complete(contentEnd: Int, next: Int)
        /// No LF yet, and the window still has room.
        case incomplete
        /// No LF within the window: the line (or section) is over its limit.
        case overLimit
        case error(HTTPParseError)
    }

    /// Finds the LF ending the current line, searching only up to `windowEnd` (exclusive) so
    /// that limits are enforced without waiting for a line break that may never come.
    private mutating func findLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int, windowEnd: Int) -> Line {
        let searchEnd = min(end, windowEnd)
        // Chunk data advances readIndex without touching scanIndex; never search behind it.
        let from = max(scanIndex, readIndex)
        guard let lf = HTTPSyntax.firstLF(in: buf, from: from, to: searchEnd) else {
            scanIndex = max(from, searchEnd)
            return end >= windowEnd ? .overLimit : .incomplete
        }
        // RFC 9112 §2.2 lets a server accept a bare LF; we reject it because another parser
        // in the path (proxy, WAF) that disagrees about line ends is a smuggling vector.
        if lf == readIndex || buf[lf &- 1] != ASCII.cr { return .error(.bareLF) }
        return .complete(contentEnd: lf &- 1, next: lf &+ 1)
    }

    private mutating func consumeLine(next: Int) {
        sectionBytes &+= next &- readIndex
        readIndex = next
        scanIndex = next
    }

    private mutating func requestLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        // RFC 9112 §2.2: ignore at least one empty line before a request line (some clients
        // send CRLF after a POST body). They are dropped as they come, so they cost no memory.
        while readIndex < end {
            let b = buf[readIndex]
            if b == ASCII.lf { return .error(.bareLF) }
            guard b == ASCII.cr else { break }
            guard readIndex &+ 1 < end else { return .needMoreData }
            guard buf[readIndex &+ 1] == ASCII.lf else { return .error(.bareCR) }
            readIndex &+= 2
            scanIndex = max(scanIndex, readIndex)
            methodScanIndex = methodScanIndex.map { max($0, readIndex) }
        }
        guard readIndex < end else { return .needMoreData }

        let lineLimit = readIndex &+ limits.maxRequestLineBytes &+ 2
        let headLimit = readIndex &+ limits.maxHeaderBytes
        let windowEnd = min(lineLimit, headLimit)
        let line = findLine(buf, end, windowEnd: windowEnd)

        // The early method check runs before any verdict on the line, complete or not, so the
        // first bad byte decides the error however the input was split.
        if let error = checkMethodPrefix(buf, upTo: min(end, windowEnd)) { return .error(error) }

        switch line {
        case .incomplete:
            return .needMoreData
        case .overLimit:
            return .error(windowEnd == lineLimit ? .uriTooLong(limits.maxRequestLineBytes)
                                                 : .headersTooLarge(limits.maxHeaderBytes))
        case .error(let error):
            return .error(error)
        case .complete(let contentEnd, let next):
            if let error = head.parseRequestLine(buf, readIndex, contentEnd) { return .error(error) }
            consumeLine(next: next)
            state = .headerLines
            return nil
        }
    }

    /// Rejects a malformed method as soon as its first bad byte arrives, without waiting for
    /// the line to end: a TLS ClientHello or other binary probe on the plain-text port then
    /// fails on its first byte instead of after 8 KiB. Stops (without verdict) at SP or CR,
    /// which the full request-line parse judges.
    private mutating func checkMethodPrefix(_ buf: UnsafeBufferPointer<UInt8>, upTo limit: Int) -> HTTPParseError? {
        guard var i = methodScanIndex else { return nil }
        while i < limit {
            let b = buf[i]
            if HTTPSyntax.isTchar(b) { i &+= 1; continue }
            if b == ASCII.space || b == ASCII.cr || b == ASCII.lf {
                methodScanIndex = nil
                return nil
            }
            return .invalidMethod()
        }
        methodScanIndex = i
        return nil
    }

    private mutating func headerLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        let windowEnd = readIndex &+ (limits.maxHeaderBytes &- sectionBytes)
        switch findLine(buf, end, windowEnd: windowEnd) {
        case .incomplete:
            return .needMoreData
        case .overLimit:
            return .error(.headersTooLarge(limits.maxHeaderBytes))
        case .error(let error):
            return .error(error)
        case .complete(let contentEnd, let next):
            let start = readIndex
            consumeLine(next: next)
            if contentEnd == start { return endOfHead() }
            if head.headers.count >= limits.maxHeaderCount { return .error(.tooManyHeaders(limits.maxHeaderCount)) }
            if let error = head.addField(buf, start, contentEnd) { return .error(error) }
            return nil
        }
    }

    private mutating func endOfHead() -> Outcome? {
        switch head.framing(limits: limits) {
        case .failure(let error):
            return .error(error)
        case .success(.none):
            return .request
        case .success(.length(let length)):
            state = .fixedBody(length)
            return nil
        case .success(.chunked):
            state = .chunkSize
            return nil
        }
    }

    // MARK: Chunked body (RFC 9112 §7.1)

    private mutating func chunkSizeLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        let windowEnd = readIndex &+ limits.maxChunkLineBytes &+ 2
        switch findLine(buf, end, windowEnd: windowEnd) {
        case .incomplete:
            return .needMoreData
        case .overLimit:
            return .error(.invalidChunkExtension("chunk size line exceeds \(limits.maxChunkLineBytes) bytes"))
        case .error(let error):
            return .error(error)
        case .complete(let contentEnd, let next):
            let size: UInt64
            switch ChunkSizeLine.parse(buf, readIndex, contentEnd) {
            case .failure(let error): return .error(error)
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
            // Decide from the size line, before buffering the data, like Content-Length.
            guard size <= UInt64(limits.maxBodyBytes &- body.count) else {
                return .error(.payloadTooLarge(limits.maxBodyBytes))
            }
            state = .chunkData(remaining: Int(size))
            return nil
        }
    }

    /// Trailer fields are validated like header fields and bounded by the same limits, then
    /// dropped: nothing in the hub uses them, and merging them into the headers after the fact
    /// would let a client change fields that were already acted upon (RFC 9110 §6.5.1).
    private mutating func trailerLine(_ buf: UnsafeBufferPointer<UInt8>, _ end: Int) -> Outcome? {
        let windowEnd = readIndex &+ (limits.maxHeaderBytes &- sectionBytes)
        switch findLine(buf, end, windowEnd: windowEnd) {
        case .incomplete:
            return .needMoreData
        case .overLimit:
            return .error(.headersTooLarge(limits.maxHeaderBytes))
        case .error(let error):
            return .error(error)
        case .complete(let contentEnd, let next):
            let start = readIndex
            consumeLine(next: next)
            if contentEnd == start { return .request }
            if trailerCount >= limits.maxHeaderCount { return .error(.tooManyHeaders(limits.maxHeaderCount)) }
            if case .failure(let error) = HeaderFieldLine.split(buf, start, contentEnd) { return .error(error) }
            trailerCount &+= 1
            return nil
        }
    }
}

/// The chunk-size line: `chunk-size [ chunk-ext ]` where
/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`.
enum ChunkSizeLine {
    /// Parses the hex size and skips extensions, which have no registered use; their bytes
    /// are only checked for control characters (and bounded by the caller's line window).
    static func parse(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Result<UInt64, HTTPParseError> {
        var i = start
        var size: UInt64 = 0
        while i < end, let digit = HTTPSyntax.hexValue(buf[i]) {
            // Leading zeros are legal, so overflow is judged on the value, not the digit count.
            guard size <= UInt64.max >> 4 else { return .failure(.invalidChunkSize("chunk size overflows")) }
            size = size << 4 | digit
            i &+= 1
        }
        if i == start {
            return .failure(i < end && buf[i] == ASCII.cr ? .bareCR : .invalidChunkSize("chunk size is not hexadecimal"))
        }
        guard i < end else { return .success(size) }

        var j = i
        while j < end && HTTPSyntax.isOWS(buf[j]) { j &+= 1 }
        guard j < end, buf[j] == ASCII.semicolon else {
            if j < end && buf[j] == ASCII.cr { return .failure(.bareCR) }
            return .failure(.invalidChunkSize("unexpected character after chunk size"))
        }
        while j < end {
            let b = buf[j]
            if HTTPSyntax.isForbiddenInValue(b) {
                return .failure(b == ASCII.cr ? .bareCR : .invalidChunkExtension("chunk extension contains a control character"))
            }
            j &+= 1
        }
        return .success(size)
    }
}
