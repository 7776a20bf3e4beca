// Line-level parsing of a request head: the request line, header fields, and the framing
// decision (how long the body is) taken once the blank line arrives.
//
// The parser hands this builder one complete line at a time (CRLF already stripped and
// checked), so everything here is free of buffering concerns and can be validated with a
// single left-to-right pass per line.

/// Accumulates the request line and header fields of one request, and the facts about them
/// that decide framing and connection handling, so no header is ever searched for twice.
struct RequestHeadBuilder {
    var method: HTTPMethod = .get
    var target = ""
    var path = ""
    var query: String?
    var version = HTTPVersion.http1_1
    var headers = HTTPHeaders()

    // Facts gathered while the fields go by, so the framing decision needs no lookups.
    private var hostCount = 0
    /// Content-Length, Transfer-Encoding and Connection, shared with the response parser.
    private var framingFields = FramingFields()
    private var upgradeSeen = false
    /// `Expect: 100-continue` on an HTTP/1.1 request: the client waits for `100 Continue`
    /// before it sends the body (RFC 9110 §10.1.1).
    private(set) var expectsContinue = false

    /// Typical requests carry about a dozen fields; reserving once avoids the four or five
    /// regrowths of an empty array.
    static let expectedFieldCount = 16

    init() {}

    mutating func reset() {
        self = RequestHeadBuilder()
        headers = HTTPHeaders(reservingCapacity: Self.expectedFieldCount)
    }

    // MARK: Request line

    /// Parses `method SP request-target SP HTTP-version` (RFC 9112 §3) from `buf[start..<end]`.
    ///
    /// Checks run left to right so that the first offending byte decides the error; this keeps
    /// the result identical to `HTTPParser`'s early method check on an incomplete line. The
    /// version is checked before the target so that the h2 preface `PRI * HTTP/2.0` gets 505
    /// rather than an asterisk-form complaint.
    mutating func parseRequestLine(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPParseError? {
        var i = start
        while i < end && HTTPSyntax.isTchar(buf[i]) { i &+= 1 }
        if i == end { return .invalidRequestLine("request line has no target") }
        if buf[i] != ASCII.space {
            return buf[i] == ASCII.cr ? .bareCR : .invalidMethod()
        }
        if i == start { return .invalidMethod("empty method") }
        let methodEnd = i

        // A stray CR anywhere in the rest of the line is a framing error in its own right
        // (RFC 9112 §2.2), reported as such rather than as whatever field it happens to be in.
        var k = methodEnd
        while k < end {
            if buf[k] == ASCII.cr { return .bareCR }
            k &+= 1
        }

        let targetStart = methodEnd &+ 1
        var targetEnd = targetStart
        while targetEnd < end && buf[targetEnd] != ASCII.space { targetEnd &+= 1 }
        if targetEnd == targetStart { return .invalidRequestLine("empty target or repeated space") }
        if targetEnd == end { return .invalidRequestLine("request line has no HTTP version") }

        switch HTTPVersion.parse(buf, targetEnd &+ 1, end) {
        case .malformed: return .invalidVersion
        case .unsupported: return .versionNotSupported
        case .supported(let v): version = v
        }

        method = HTTPMethod(bytes: UnsafeBufferPointer(rebasing: buf[start..<methodEnd]))
        let parts: RequestTargetParts
        switch RequestTarget.parse(buf, targetStart, targetEnd, method: method) {
        case .failure(let error): return error
        case .success(let p): parts = p
        }

        target = HTTPSyntax.string(buf, targetStart, targetEnd)
        if parts.isAsterisk {
            path = "*"
        } else if parts.isEmptyAbsolutePath {
            path = "/"
        } else if parts.pathStart == targetStart && parts.pathEnd == targetEnd {
            path = target            // common case: no query, share the String (no 2nd copy)
        } else {
            path = HTTPSyntax.string(buf, parts.pathStart, parts.pathEnd)
        }
        query = parts.queryStart.map { HTTPSyntax.string(buf, $0, targetEnd) }
        return nil
    }

    // MARK: Header fields

    /// Validates and stores one header field line, recording framing facts.
    mutating func addField(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPParseError? {
        let f: HeaderFieldLine.Bounds
        switch HeaderFieldLine.split(buf, start, end) {
        case .failure(let error): return error
        case .success(let bounds): f = bounds
        }
        if let error = noteFramingFacts(buf, nameStart: start, f) { return error }
        headers.fields.append(HTTPHeaders.Field(name: HTTPSyntax.string(buf, start, f.nameEnd),
                                                value: HTTPSyntax.string(buf, f.valueStart, f.valueEnd)))
        return nil
    }

    /// Looks at the few fields that affect framing or connection handling. Names are compared
    /// on bytes, dispatching on length first, so ordinary fields cost one switch.
    private mutating func noteFramingFacts(_ buf: UnsafeBufferPointer<UInt8>, nameStart: Int, _ f: HeaderFieldLine.Bounds) -> HTTPParseError? {
        let nameLength = f.nameEnd &- nameStart
        switch nameLength {
        case 4 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "host"):
            hostCount &+= 1
            // RFC 9112 §3.2: more than one Host is an error for every version.
            if hostCount > 1 { return .duplicateHost }
        case 6 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "expect"):
            if version.minor >= 1 && HTTPSyntax.equalsLowercase(buf, f.valueStart, f.valueEnd, "100-continue") { expectsContinue = true }
        case 7 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "upgrade"):
            if f.valueEnd > f.valueStart { upgradeSeen = true }
        default:
            return framingFields.note(buf, nameStart: nameStart, f)
        }
        return nil
    }

    // MARK: End of head

    /// Decides body framing once the head is complete (RFC 9112 §6.1–6.3).
    func framing(limits: HTTPParserLimits) -> Result<BodyFraming, HTTPParseError> {
        if version == .http1_1 && hostCount == 0 { return .failure(.missingHost) }
        return framingFields.announcedFraming(version: version, maxBodyBytes: limits.maxBodyBytes).map { $0 ?? BodyFraming.none }
    }

    /// Builds the request, moving the accumulated fields out of the builder.
    func makeRequest(body: [UInt8]) -> HTTPRequest {
        let keepAlive = framingFields.keepAlive(version: version)
        return HTTPRequest(method: method, target: target, path: path, query: query,
                           version: version, headers: headers, body: body,
                           keepAlive: keepAlive, isUpgrade: framingFields.connectionUpgrade && upgradeSeen)
    }
}
