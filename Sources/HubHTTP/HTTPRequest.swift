// A parsed request and the parser's result type, plus request-target form analysis.

/// A complete request: head fields as received, connection semantics derived, body decoded.
public struct HTTPRequest: Hashable, Sendable {
    public var method: HTTPMethod
    /// The request target exactly as received (origin-, absolute- or asterisk-form).
    public var target: String
    /// The path part of the target, without the query; percent-decoding is NOT applied, so
    /// `%2F` stays distinguishable from `/` for the router. For absolute-form targets this is
    /// the path after the authority (`/` if none); for `OPTIONS *` it is `*`.
    public var path: String
    /// Everything after the first `?`, without it; nil when the target has no `?`.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// The message body: Content-Length bytes, or the decoded chunks of a chunked body.
    public var body: [UInt8]
    /// Whether the connection may stay open after the response (RFC 9112 §9.3): HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no `close`).
    public var keepAlive: Bool
    /// Whether the client asks to switch protocols: a `Connection: upgrade` token and an
    /// `Upgrade` header. The parser does not act on it; the server decides whether to switch
    /// and then takes the bytes that follow with `HTTPParser.takeBufferedBytes()`.
    public var isUpgrade: Bool

    public init(method: HTTPMethod, target: String, path: String, query: String?,
                version: HTTPVersion, headers: HTTPHeaders, body: [UInt8],
                keepAlive: Bool, isUpgrade: Bool) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
        self.isUpgrade = isUpgrade
    }
}

/// What one call of `HTTPParser.next()` produced.
public enum HTTPParseResult: Hashable, Sendable {
    /// A complete request; call `next()` again for a pipelined one.
    case request(HTTPRequest)
    /// The buffered bytes do not complete a request; append more and call again.
    case needMoreData
    /// The input is invalid; answer `error.status` and close. Sticky: later calls repeat it.
    case error(HTTPParseError)
}

/// Where the path and query of a validated request target lie in the line buffer.
struct RequestTargetParts {
    var pathStart: Int
    var pathEnd: Int
    /// Start of the query (after `?`), or nil without one. The query runs to the target's end.
    var queryStart: Int?
    /// True for `OPTIONS *`: the path is the literal `*`.
    var isAsterisk = false
    /// True for an absolute-form target without a path (`http://host`): the path is `/`.
    var isEmptyAbsolutePath = false
}

enum RequestTarget {
    /// Classifies and validates `buf[start..<end]` (RFC 9112 §3.2).
    ///
    /// - origin-form `/path?query`: the normal case.
    /// - absolute-form `http://authority/path?query`: must be accepted by servers (§3.2.2) so
    ///   that a request sent as if to a proxy still works; the path comes from the URI and the
    ///   authority is not interpreted further (Host is still required for HTTP/1.1).
    /// - asterisk-form `*`: only for OPTIONS (server-wide options).
    /// - authority-form `host:port` is for CONNECT, which a hub does not tunnel → 400, as is
    ///   anything else.
    ///
    /// Bytes 0x80–0xFF are let through (as nginx does) because some clients send raw UTF-8
    /// paths; CTLs never are: they are how header injection and log forging start.
    static func parse(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                      method: HTTPMethod) -> Result<RequestTargetParts, HTTPParseError> {
        // The caller split the line on SP, so only the other controls remain to be checked.
        var i = start
        while i < end {
            let b = buf[i]
            if b < 0x20 || b == ASCII.del {
                return .failure(b == ASCII.cr ? .bareCR : .invalidTarget("target contains a control character"))
            }
            i &+= 1
        }

        let first = buf[start]
        if first == ASCII.slash {
            return .success(splitQuery(buf, pathStart: start, end: end))
        }
        if first == ASCII.asterisk && end &- start == 1 {
            guard method == .options else {
                return .failure(.invalidTarget("asterisk-form target is only allowed with OPTIONS"))
            }
            return .success(RequestTargetParts(pathStart: start, pathEnd: end, queryStart: nil, isAsterisk: true))
        }
        if let authorityStart = schemeEnd(buf, start, end) {
            var a = authorityStart
            while a < end && buf[a] != ASCII.slash && buf[a] != ASCII.question {
                // userinfo ("user:pass@host") is forbidden in http(s) URIs (RFC 9110 §4.2.4)
                // and is a classic way to disguise the real host in logs.
                if buf[a] == 0x40 { return .failure(.invalidTarget("absolute-form target with userinfo")) }
                a &+= 1
            }
            guard a > authorityStart else {
                return .failure(.invalidTarget("absolute-form target without authority"))
            }
            if a == end {
                return .success(RequestTargetParts(pathStart: a, pathEnd: a, queryStart: nil, isEmptyAbsolutePath: true))
            }
            if buf[a] == ASCII.question {
                return .success(RequestTargetParts(pathStart: a, pathEnd: a, queryStart: a &+ 1, isEmptyAbsolutePath: true))
            }
            return .success(splitQuery(buf, pathStart: a, end: end))
        }
        return .failure(.invalidTarget("target must be origin-form (/path) or absolute-form (http://host/path)"))
    }

    private static func splitQuery(_ buf: UnsafeBufferPointer<UInt8>, pathStart: Int, end: Int) -> RequestTargetParts {
        var q = pathStart
        while q < end && buf[q] != ASCII.question { q &+= 1 }
        return RequestTargetParts(pathStart: pathStart, pathEnd: q, queryStart: q < end ? q &+ 1 : nil)
    }

    /// If the target starts with `http://` or `https://` (scheme case-insensitive, RFC 3986
    /// §3.1), the index just after `//`.
    private static func schemeEnd(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        if end &- start >= 7 && HTTPSyntax.equalsLowercase(buf, start, start &+ 7, "http://") {
            return start &+ 7
        }
        if end &- start >= 8 && HTTPSyntax.equalsLowercase(buf, start, start &+ 8, "https://") {
            return start &+ 8
        }
        return nil
    }
}
