// Response serialization straight into the connection's output buffer.

/// Status and header fields of a response, before framing headers are added.
public struct HTTPResponseHead: Hashable, Sendable {
    public var status: Int
    public var headers: HTTPHeaders

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.headers = headers
    }
}

/// Serializes HTTP/1.1 responses into a caller-owned byte array.
///
/// The connection owns one output buffer and every response is appended to it, so writes of
/// pipelined responses are batched into one `write` per loop iteration and no intermediate
/// String or Array is built: literals are copied from static storage, Strings through their
/// contiguous UTF-8, numbers digit by digit.
public enum HTTPResponseEncoder {
    /// Appends "HTTP/1.1 <status> <reason>\r\n", the headers, `Date`, `Content-Length`
    /// (unless the status forbids a body or headers already have Transfer-Encoding),
    /// `Connection: close` when !keepAlive, then CRLF and the body (omitted for HEAD requests
    /// via `headOnly`).
    ///
    /// Headers the caller already set win: an existing `Date`, `Content-Length` or
    /// `Connection: close` is not written twice. A `headOnly` response still announces the
    /// length of `body`, as a GET would (RFC 9110 §9.3.2). 1xx, 204 and 304 responses never get
    /// a Content-Length or a body (RFC 9110 §6.4.1, §8.6).
    ///
    /// Header names and values are written defensively: a CR, LF or other control byte in a
    /// value (say, user input echoed in `Location`) becomes a space, and a non-token byte in
    /// a name becomes `-`, so no caller can split the response into two (header injection).
    ///
    /// An HTTP/1.0 client that asked for keep-alive only keeps the connection if the response
    /// says `Connection: keep-alive`; the caller adds that header, since it knows the version.
    ///
    /// `extra` is one more field written after the head's own (the connection's
    /// `X-Request-ID`): passing it here instead of adding it to `head.headers` spares a
    /// copy of a shared header array per response.
    public static func encode(_ head: HTTPResponseHead, body: UnsafeRawBufferPointer, keepAlive: Bool,
                              headOnly: Bool, date: HTTPDate, extra: HTTPHeaders.Field? = nil, into out: inout [UInt8]) {
        appendStatusLine(head.status, into: &out)

        var hasDate = false, hasLength = false, hasTransferEncoding = false, hasClose = false
        for field in head.headers.fields {
            switch field.name.utf8.count {
            case 4: hasDate = hasDate || HTTPSyntax.equalsIgnoringCase(field.name, "date")
            case 10:
                if HTTPSyntax.equalsIgnoringCase(field.name, "connection") {
                    hasClose = hasClose || HTTPSyntax.listContainsToken(field.value, "close")
                }
            case 14: hasLength = hasLength || HTTPSyntax.equalsIgnoringCase(field.name, "content-length")
            case 17: hasTransferEncoding = hasTransferEncoding || HTTPSyntax.equalsIgnoringCase(field.name, "transfer-encoding")
            default: break
            }
            appendField(name: field.name, value: field.value, into: &out)
        }

        if let extra { appendField(name: extra.name, value: extra.value, into: &out) }
        if !hasDate {
            appendStatic("Date: ", into: &out)
            out.append(contentsOf: date.bytes)
            appendStatic("\r\n", into: &out)
        }
        let bodyAllowed = !bodyForbidden(head.status)
        if bodyAllowed && !hasLength && !hasTransferEncoding {
            appendStatic("Content-Length: ", into: &out)
            appendDecimal(body.count, into: &out)
            appendStatic("\r\n", into: &out)
        }
        if !keepAlive && !hasClose {
            appendStatic("Connection: close\r\n", into: &out)
        }
        appendStatic("\r\n", into: &out)
        if bodyAllowed && !headOnly && body.count > 0 {
            out.append(contentsOf: body)
        }
    }

    /// The status line and the head's fields, sanitised as `encode` writes them.
    static func encodeStatusAndFields(_ head: HTTPResponseHead, into out: inout [UInt8]) {
        appendStatusLine(head.status, into: &out)
        for field in head.headers.fields { appendField(name: field.name, value: field.value, into: &out) }
    }

    /// Convenience for bodies held in an array.
    public static func encode(_ head: HTTPResponseHead, body: [UInt8], keepAlive: Bool,
                              headOnly: Bool, date: HTTPDate, into out: inout [UInt8]) {
        body.withUnsafeBytes {
            encode(head, body: $0, keepAlive: keepAlive, headOnly: headOnly, date: date, into: &out)
        }
    }

    /// Whether a response with this status never has content (RFC 9110 §15.2, §15.3.5, §15.4.5).
    public static func bodyForbidden(_ status: Int) -> Bool {
        (100..<200).contains(status) || status == 204 || status == 304
    }

    /// The standard reason phrase of a status code ("Unknown" for unregistered codes; clients
    /// must ignore the phrase anyway, RFC 9112 §4).
    public static func reasonPhrase(_ status: Int) -> String {
        reason(status).description
    }

    // MARK: Writing primitives

    private static func appendStatusLine(_ status: Int, into out: inout [UInt8]) {
        appendStatic("HTTP/1.1 ", into: &out)
        appendDecimal(status, into: &out)
        out.append(ASCII.space)
        appendStatic(reason(status), into: &out)
        appendStatic("\r\n", into: &out)
    }

    static func appendField(name: String, value: String, into out: inout [UInt8]) {
        let nameStart = out.count
        out.append(contentsOf: name.utf8)
        let valueStart = out.count + 2
        appendStatic(": ", into: &out)
        out.append(contentsOf: value.utf8)
        let valueEnd = out.count
        appendStatic("\r\n", into: &out)
        // Sanitize in place after the bulk copy: one scan, no branches on the common path
        // beyond the comparison, and no temporary copies of the Strings.
        out.withUnsafeMutableBufferPointer { o in
            var i = nameStart
            while i < valueStart &- 2 {
                if !HTTPSyntax.isTchar(o[i]) { o[i] = 0x2D }     // "-"
                i &+= 1
            }
            i = valueStart
            while i < valueEnd {
                let b = o[i]
                if b < 0x20 && b != ASCII.tab || b == ASCII.del { o[i] = ASCII.space }
                i &+= 1
            }
        }
    }

    @inline(__always)
    static func appendStatic(_ s: StaticString, into out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Appends the decimal digits of a non-negative integer (negatives are written as 0:
    /// lengths and statuses are never negative, and a "-" would corrupt the framing).
    static func appendDecimal(_ value: Int, into out: inout [UInt8]) {
        var v = UInt(max(value, 0))
        var divisor: UInt = 1
        while divisor <= v / 10 { divisor &*= 10 }
        while divisor > 0 {
            out.append(UInt8(truncatingIfNeeded: v / divisor) &+ ASCII.zero)
            v %= divisor
            divisor /= 10
        }
    }

    /// Reason phrases of the registered codes a hub can send (RFC 9110 §15 and RFC 6585).
    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 203: return "Non-Authoritative Information"
        case 204: return "No Content"
        case 205: return "Reset Content"
        case 206: return "Partial Content"
        case 300: return "Multiple Choices"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Content"
        case 423: return "Locked"
        case 424: return "Failed Dependency"
        case 425: return "Too Early"
        case 426: return "Upgrade Required"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 451: return "Unavailable For Legal Reasons"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 507: return "Insufficient Storage"
        case 511: return "Network Authentication Required"
        default: return "Unknown"
        }
    }
}
