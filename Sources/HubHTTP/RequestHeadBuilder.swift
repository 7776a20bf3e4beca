// Line-level parsing of a request head: the request line, header fields, and the framing
// decision (how long the body is) taken once the blank line arrives.
//
// The parser hands this builder one complete line at a time (CRLF already stripped and
// checked), so everything here is free of buffering concerns and can be validated with a
// single left-to-right pass per line.

/// How the body of the request being parsed is delimited (RFC 9112 §6.3).
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
}

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
    private var contentLengthSeen = false
    /// Parsed Content-Length; UInt64.max stands for "overflowed", which is rejected as too
    /// large later (two overflowing values compare equal, and both get 413 anyway).
    private var contentLength: UInt64 = 0
    private var transferEncodingSeen = false
    private var chunkedIsLast = false
    private var chunkedCount = 0
    private var otherCodings = false
    private var connectionClose = false
    private var connectionKeepAlive = false
    private var connectionUpgrade = false
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

    /// Bounds of a syntactically valid field line `name ":" OWS value OWS`.
    struct FieldBounds {
        var nameEnd: Int
        var valueStart: Int
        var valueEnd: Int
    }

    /// Validates one field line (RFC 9112 §5, RFC 9110 §5.5). Shared by header and trailer
    /// sections, which have identical syntax.
    static func splitField(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Result<FieldBounds, HTTPParseError> {
        // obs-fold: a continuation line. RFC 9112 §5.2 lets a server reject it, which closes
        // the door on parsers that disagree about where a value ends.
        if HTTPSyntax.isOWS(buf[start]) { return .failure(.obsFold) }

        var i = start
        while i < end && HTTPSyntax.isTchar(buf[i]) { i &+= 1 }
        if i == end { return .failure(.invalidHeaderName("header line without colon")) }
        let b = buf[i]
        if b != ASCII.colon {
            if b == ASCII.cr { return .failure(.bareCR) }
            // Whitespace before the colon MUST be rejected (RFC 9112 §5.1): it is a known
            // smuggling vector ("Transfer-Encoding : chunked").
            return .failure(.invalidHeaderName(HTTPSyntax.isOWS(b) ? "whitespace before colon" : "header name is not a token"))
        }
        if i == start { return .failure(.invalidHeaderName("empty header name")) }

        var vs = i &+ 1
        var ve = end
        while vs < ve && HTTPSyntax.isOWS(buf[vs]) { vs &+= 1 }
        while ve > vs && HTTPSyntax.isOWS(buf[ve &- 1]) { ve &-= 1 }
        if let bad = HTTPSyntax.firstForbiddenValueByte(in: buf, from: vs, to: ve) {
            return .failure(buf[bad] == ASCII.cr ? .bareCR : .invalidHeaderValue)
        }
        return .success(FieldBounds(nameEnd: i, valueStart: vs, valueEnd: ve))
    }

    /// Validates and stores one header field line, recording framing facts.
    mutating func addField(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPParseError? {
        let f: FieldBounds
        switch Self.splitField(buf, start, end) {
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
    private mutating func noteFramingFacts(_ buf: UnsafeBufferPointer<UInt8>, nameStart: Int, _ f: FieldBounds) -> HTTPParseError? {
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
        case 10 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "connection"):
            HTTPSyntax.forEachListElement(buf, f.valueStart, f.valueEnd) { s, e in
                if HTTPSyntax.equalsLowercase(buf, s, e, "close") { connectionClose = true }
                else if HTTPSyntax.equalsLowercase(buf, s, e, "keep-alive") { connectionKeepAlive = true }
                else if HTTPSyntax.equalsLowercase(buf, s, e, "upgrade") { connectionUpgrade = true }
                return true
            }
        case 14 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "content-length"):
            return noteContentLength(buf, f.valueStart, f.valueEnd)
        case 17 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "transfer-encoding"):
            transferEncodingSeen = true
            HTTPSyntax.forEachListElement(buf, f.valueStart, f.valueEnd) { s, e in
                if HTTPSyntax.equalsLowercase(buf, s, e, "chunked") {
                    chunkedCount &+= 1
                    chunkedIsLast = true
                } else {
                    otherCodings = true
                    chunkedIsLast = false
                }
                return true
            }
        default:
            break
        }
        return nil
    }

    /// `Content-Length = 1*DIGIT`, possibly repeated as a list or in several fields. RFC 9112
    /// §6.3 allows accepting identical repeats ("5, 5"); differing ones are the classic
    /// request-smuggling ambiguity and are rejected.
    private mutating func noteContentLength(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPParseError? {
        var error: HTTPParseError?
        var elements = 0
        HTTPSyntax.forEachListElement(buf, start, end) { s, e in
            elements &+= 1
            var value: UInt64 = 0
            var i = s
            while i < e {
                let b = buf[i]
                guard HTTPSyntax.isDigit(b) else {
                    error = .invalidContentLength("Content-Length must be digits only")
                    return false
                }
                // Saturate instead of trapping: an absurd length is "too large", not a crash.
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(b &- ASCII.zero))
                value = (o1 || o2) ? UInt64.max : a
                if value == UInt64.max { break }
                i &+= 1
            }
            // Finish validating the digits even after saturation, so "99…9x" is still a 400.
            while i < e {
                if !HTTPSyntax.isDigit(buf[i]) {
                    error = .invalidContentLength("Content-Length must be digits only")
                    return false
                }
                i &+= 1
            }
            if contentLengthSeen && value != contentLength {
                error = .conflictingContentLength
                return false
            }
            contentLengthSeen = true
            contentLength = value
            return true
        }
        if error == nil && elements == 0 { error = .invalidContentLength("empty Content-Length") }
        return error
    }

    // MARK: End of head

    /// Decides body framing once the head is complete (RFC 9112 §6.1–6.3).
    func framing(limits: HTTPParserLimits) -> Result<BodyFraming, HTTPParseError> {
        if version == .http1_1 && hostCount == 0 { return .failure(.missingHost) }
        if transferEncodingSeen {
            // Both present: the message could be read two ways by two parsers (smuggling).
            if contentLengthSeen { return .failure(.transferEncodingWithContentLength) }
            // §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            if version == .http1_0 { return .failure(.invalidTransferEncoding("Transfer-Encoding in an HTTP/1.0 request")) }
            // §6.3: if chunked is not the final coding the length cannot be known → 400.
            if !chunkedIsLast { return .failure(.invalidTransferEncoding("chunked must be the final transfer coding")) }
            if chunkedCount > 1 { return .failure(.invalidTransferEncoding("chunked applied more than once")) }
            // Well-framed but with a coding (gzip, …) we do not decode: §6.1 suggests 501.
            if otherCodings { return .failure(.unsupportedTransferEncoding) }
            return .success(.chunked)
        }
        if contentLengthSeen {
            if contentLength > UInt64(limits.maxBodyBytes) { return .failure(.payloadTooLarge(limits.maxBodyBytes)) }
            return .success(contentLength == 0 ? .none : .length(Int(contentLength)))
        }
        return .success(.none)
    }

    /// Builds the request, moving the accumulated fields out of the builder.
    func makeRequest(body: [UInt8]) -> HTTPRequest {
        let keepAlive: Bool
        if version == .http1_1 {
            keepAlive = !connectionClose
        } else {
            keepAlive = connectionKeepAlive && !connectionClose
        }
        return HTTPRequest(method: method, target: target, path: path, query: query,
                           version: version, headers: headers, body: body,
                           keepAlive: keepAlive, isUpgrade: connectionUpgrade && upgradeSeen)
    }
}
