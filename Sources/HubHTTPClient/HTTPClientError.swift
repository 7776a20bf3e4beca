/// Why an `HTTPClient` request failed. A request either returns a complete response (any
/// status, 4xx and 5xx included) or throws exactly one of these.
public enum HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL, a header or the method cannot be sent (nothing was sent).
    case invalidRequest(String)
    /// The host name did not resolve, or no address accepted the TCP connection.
    case connectFailed(String)
    /// The TLS handshake failed: certificate not trusted, wrong host name, protocol mismatch,
    /// or the server closed the connection during the handshake.
    case tlsFailed(String)
    /// The whole exchange (resolution, connect, handshake, request, response) took longer
    /// than the request's timeout.
    case timeout
    /// The server sent something that is not a well-formed HTTP/1.1 response, or closed the
    /// connection before the response was complete. Carries the parser's code and detail.
    case badResponse(String)
    /// The response body is larger than `HTTPClient.Configuration.limits.maxBodyBytes`.
    case bodyTooLarge(limit: Int)
    /// The connection failed after it was established (reset, I/O error).
    case connectionLost(String)
    /// The calling task was cancelled.
    case cancelled
    /// The client was shut down.
    case shutdown

    public var description: String {
        switch self {
        case .invalidRequest(let why): return "invalid request: \(why)"
        case .connectFailed(let why): return "connect failed: \(why)"
        case .tlsFailed(let why): return "TLS failed: \(why)"
        case .timeout: return "request timed out"
        case .badResponse(let why): return "bad response: \(why)"
        case .bodyTooLarge(let limit): return "response body exceeds \(limit) bytes"
        case .connectionLost(let why): return "connection lost: \(why)"
        case .cancelled: return "request cancelled"
        case .shutdown: return "HTTP client is shut down"
        }
    }
}
