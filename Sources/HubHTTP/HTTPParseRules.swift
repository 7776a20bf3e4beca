// What the request parser rejects and how it says so: the size limits it enforces (every
// bound named and defaulted in one place) and the catalogue of error codes it reports.

/// Size limits of the request parser.
///
/// Each limit is checked as bytes arrive, never only once a message is complete, so a client
/// cannot make the server buffer more than these numbers allow by simply not finishing a line.
/// The defaults follow common server practice (nginx: 8 KiB request line buffers, 16 KiB
/// header budget; 100 fields is Apache's `LimitRequestFields`).
public struct HTTPParserLimits: Hashable, Sendable {
    /// Longest request line, without its CRLF. Longer → 414 `uri_too_long`.
    /// Long enough for query strings carrying tokens; short enough that a probe of random
    /// bytes without a line break is rejected quickly.
    public var maxRequestLineBytes: Int

    /// Largest request head: request line, header lines and the blank line, CRLFs included.
    /// Larger → 431 `headers_too_large`. Trailer sections of chunked bodies get the same budget.
    public var maxHeaderBytes: Int

    /// Most header fields in one request (and, separately, trailer fields).
    /// More → 431 `too_many_headers`. Bounds the per-request allocation count, which the byte
    /// budget alone does not (16 KiB of "a:\r\n" would be 4 000 fields).
    public var maxHeaderCount: Int

    /// Largest request body, decided from Content-Length before any body byte is read, and
    /// enforced on the running total of a chunked body. Larger → 413 `payload_too_large`.
    public var maxBodyBytes: Int

    /// Longest chunk-size line of a chunked body (size, extensions), without its CRLF.
    /// Chunk extensions have no defined use and are skipped; this bound keeps skipping them
    /// from buffering without limit. Longer → 400 `invalid_chunk_extension`.
    public var maxChunkLineBytes: Int

    public init(maxRequestLineBytes: Int = 8192,
                maxHeaderBytes: Int = 16384,
                maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 1 << 20,
                maxChunkLineBytes: Int = 4096) {
        // Non-positive limits would make the window arithmetic meaningless; clamp instead of
        // trapping so a bad configuration value degrades to "reject everything" safely.
        self.maxRequestLineBytes = max(1, maxRequestLineBytes)
        self.maxHeaderBytes = max(2, maxHeaderBytes)
        self.maxHeaderCount = max(0, maxHeaderCount)
        self.maxBodyBytes = max(0, maxBodyBytes)
        self.maxChunkLineBytes = max(1, maxChunkLineBytes)
    }
}

/// A request the parser rejects, with the status to answer and a stable machine-readable code.
///
/// `code` is part of the public contract (it appears in problem+json bodies, logs and metrics
/// labels) and never changes meaning; `detail` is for humans and may be reworded. The caller
/// answers with `status` (see `Problem.init(_:)`) and then closes the connection: after a
/// framing error the position of the next request in the byte stream is unknowable.
public struct HTTPParseError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var detail: String

    public init(status: Int, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(status) \(code): \(detail)" }
}

// The constructors below are the only place codes are spelled, so tests and docs can list them.
// They are functions rather than constants because most take a detail describing the input.
extension HTTPParseError {
    // MARK: Request line

    /// The method is empty or contains a byte outside the token set.
    static func invalidMethod(_ detail: String = "method is not a token") -> Self {
        .init(status: 400, code: "invalid_method", detail: detail)
    }

    /// Missing or doubled single-space separators, or a line with fewer than three parts.
    static func invalidRequestLine(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_request_line", detail: detail)
    }

    /// The target is not origin-, absolute- or (for OPTIONS) asterisk-form, or contains CTLs.
    static func invalidTarget(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_target", detail: detail)
    }

    /// The version field does not match `HTTP/DIGIT.DIGIT`.
    static let invalidVersion = HTTPParseError(
        status: 400, code: "invalid_version", detail: "version must be HTTP/1.0 or HTTP/1.1")

    /// A well-formed version other than 1.0/1.1, e.g. the HTTP/2 connection preface.
    static let versionNotSupported = HTTPParseError(
        status: 505, code: "http_version_not_supported", detail: "only HTTP/1.0 and HTTP/1.1 are supported")

    static func uriTooLong(_ limit: Int) -> Self {
        .init(status: 414, code: "uri_too_long", detail: "request line exceeds \(limit) bytes")
    }

    // MARK: Line structure

    static let bareLF = HTTPParseError(
        status: 400, code: "bare_lf", detail: "line terminated by LF without CR")

    static let bareCR = HTTPParseError(
        status: 400, code: "bare_cr", detail: "CR not followed by LF")

    // MARK: Header section

    static let obsFold = HTTPParseError(
        status: 400, code: "obs_fold", detail: "header line starts with whitespace (obsolete line folding)")

    static func invalidHeaderName(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_header_name", detail: detail)
    }

    static let invalidHeaderValue = HTTPParseError(
        status: 400, code: "invalid_header_value", detail: "header value contains a control character")

    static func headersTooLarge(_ limit: Int) -> Self {
        .init(status: 431, code: "headers_too_large", detail: "header section exceeds \(limit) bytes")
    }

    static func tooManyHeaders(_ limit: Int) -> Self {
        .init(status: 431, code: "too_many_headers", detail: "more than \(limit) header fields")
    }

    static let missingHost = HTTPParseError(
        status: 400, code: "missing_host", detail: "HTTP/1.1 request without Host header")

    static let duplicateHost = HTTPParseError(
        status: 400, code: "duplicate_host", detail: "more than one Host header")

    // MARK: Message body framing

    static func invalidContentLength(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_content_length", detail: detail)
    }

    static let conflictingContentLength = HTTPParseError(
        status: 400, code: "conflicting_content_length", detail: "Content-Length values differ")

    static let transferEncodingWithContentLength = HTTPParseError(
        status: 400, code: "transfer_encoding_with_content_length",
        detail: "both Transfer-Encoding and Content-Length are present")

    static func invalidTransferEncoding(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_transfer_encoding", detail: detail)
    }

    static let unsupportedTransferEncoding = HTTPParseError(
        status: 501, code: "unsupported_transfer_encoding",
        detail: "only the chunked transfer coding is supported")

    static func invalidChunkSize(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_chunk_size", detail: detail)
    }

    static func invalidChunkExtension(_ detail: String) -> Self {
        .init(status: 400, code: "invalid_chunk_extension", detail: detail)
    }

    static let invalidChunkTerminator = HTTPParseError(
        status: 400, code: "invalid_chunk_terminator", detail: "chunk data not followed by CRLF")

    static func payloadTooLarge(_ limit: Int) -> Self {
        .init(status: 413, code: "payload_too_large", detail: "body exceeds \(limit) bytes")
    }

    /// Every code the parser can produce, with its status, for documentation and tests.
    public static let catalogue: [(code: String, status: Int)] = [
        ("invalid_method", 400), ("invalid_request_line", 400), ("invalid_target", 400),
        ("invalid_version", 400), ("http_version_not_supported", 505), ("uri_too_long", 414),
        ("bare_lf", 400), ("bare_cr", 400), ("obs_fold", 400), ("invalid_header_name", 400),
        ("invalid_header_value", 400), ("headers_too_large", 431), ("too_many_headers", 431),
        ("missing_host", 400), ("duplicate_host", 400), ("invalid_content_length", 400),
        ("conflicting_content_length", 400), ("transfer_encoding_with_content_length", 400),
        ("invalid_transfer_encoding", 400), ("unsupported_transfer_encoding", 501),
        ("invalid_chunk_size", 400), ("invalid_chunk_extension", 400),
        ("invalid_chunk_terminator", 400), ("payload_too_large", 413),
    ]
}
