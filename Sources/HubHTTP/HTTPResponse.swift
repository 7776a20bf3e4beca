// The client side's vocabulary: a parsed response, what one parser step produced, the limits
// the response parser enforces and the errors it reports.

/// A complete response as the response parser decoded it.
public struct HTTPResponse: Hashable, Sendable {
    public var version: HTTPVersion
    /// The three-digit status code (100...599).
    public var status: Int
    /// The reason phrase as sent (possibly empty); carries no meaning (RFC 9112 §4).
    public var reason: String
    public var headers: HTTPHeaders
    /// The body: Content-Length bytes, the decoded chunks, or everything up to the close.
    public var body: [UInt8]
    /// Whether the connection may carry another request: false after `Connection: close`, for
    /// HTTP/1.0 without keep-alive, and whenever the body was delimited by the close itself.
    public var keepAlive: Bool

    public init(version: HTTPVersion, status: Int, reason: String, headers: HTTPHeaders,
                body: [UInt8], keepAlive: Bool) {
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }
}

/// What one call of `HTTPResponseParser.next()` produced.
public enum HTTPResponseParseResult: Hashable, Sendable {
    /// A complete final response (interim 1xx responses other than 101 are skipped).
    case response(HTTPResponse)
    /// The buffered bytes do not complete a response: append more, or call `finish()` at EOF.
    case needMoreData
    /// The response is malformed, over a limit, or cut short. Sticky.
    case error(HTTPResponseParseError)
}

/// Size limits of the response parser; each is enforced as bytes arrive.
///
/// The defaults suit small API and key-set responses (a JWKS document is a few KiB, so a 1 MiB
/// body bound leaves a wide margin while keeping a hostile or broken server from filling memory).
public struct HTTPResponseParserLimits: Hashable, Sendable {
    /// Largest response head: status line, header lines and the blank line, CRLFs included.
    /// Trailer sections get the same budget.
    public var maxHeadBytes: Int
    /// Most header fields in one head (and, separately, trailer fields).
    public var maxHeaderCount: Int
    /// Largest body, decided from Content-Length before reading it, and enforced on the
    /// running total of chunked and read-until-close bodies.
    public var maxBodyBytes: Int
    /// Longest chunk-size line (size and ignored extensions), without its CRLF.
    public var maxChunkLineBytes: Int
    /// Most interim (1xx) responses skipped before a final one, so a server cannot keep a
    /// client reading `100 Continue` forever within its byte limits.
    public var maxInterimResponses: Int

    public init(maxHeadBytes: Int = 16384, maxHeaderCount: Int = 100, maxBodyBytes: Int = 1 << 20,
                maxChunkLineBytes: Int = 4096, maxInterimResponses: Int = 8) {
        // Clamped rather than trapping, like HTTPParserLimits: a bad value rejects, not crashes.
        self.maxHeadBytes = max(2, maxHeadBytes)
        self.maxHeaderCount = max(0, maxHeaderCount)
        self.maxBodyBytes = max(0, maxBodyBytes)
        self.maxChunkLineBytes = max(1, maxChunkLineBytes)
        self.maxInterimResponses = max(0, maxInterimResponses)
    }
}

/// A response the parser rejects, with a stable machine-readable `code` and a human `detail`.
///
/// Field-level codes are the request parser's (`bare_lf`, `invalid_header_value`,
/// `invalid_chunk_size`, …, see `HTTPParseError.catalogue`), since both sides share the field and
/// chunk grammar; the status line and end-of-stream have codes of their own (`catalogue`).
public struct HTTPResponseParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: String
    public var detail: String

    public init(code: String, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The same code and detail as a request-side error; its status (what a server would
    /// answer) means nothing for a response.
    init(_ error: HTTPParseError) {
        self.init(code: error.code, detail: error.detail)
    }

    public var description: String { "\(code): \(detail)" }

    /// The body is larger than `HTTPResponseParserLimits.maxBodyBytes`.
    public var isBodyTooLarge: Bool { code == "payload_too_large" }

    static func invalidStatusLine(_ detail: String) -> Self {
        .init(code: "invalid_status_line", detail: detail)
    }

    static let versionNotSupported = HTTPResponseParseError(
        code: "http_version_not_supported", detail: "only HTTP/1.0 and HTTP/1.1 responses are understood")

    static let notHTTP = invalidStatusLine("response does not start with HTTP/")

    static func truncated(_ detail: String) -> Self {
        .init(code: "truncated", detail: detail)
    }

    static let noResponse = HTTPResponseParseError(code: "no_response", detail: "connection closed before a response")

    static func tooManyInterimResponses(_ limit: Int) -> Self {
        .init(code: "too_many_interim_responses", detail: "more than \(limit) interim (1xx) responses")
    }

    /// Codes only the response parser produces.
    public static let catalogue: [String] = [
        "invalid_status_line", "http_version_not_supported", "truncated", "no_response",
        "too_many_interim_responses",
    ]
}
