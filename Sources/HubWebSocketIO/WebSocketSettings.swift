import HubWebSocket

/// Every limit and timer of a WebSocket connection, with its default and the reason for it.
public struct WebSocketSettings: Sendable {
    /// Frame and message size limits (close 1009 beyond).
    public var limits = WebSocketLimits()
    /// The server pings a connection that has been quiet this long (seconds), so that NATs and
    /// load balancers see traffic and dead peers are found.
    public var pingInterval: Double = 30
    /// A connection that sends nothing (not even a pong) for this long is closed (4010): a
    /// bit over two ping intervals, so one lost pong is forgiven.
    public var idleTimeout: Double = 75
    /// After sending a close frame, wait this long for the peer's before dropping the TCP
    /// connection.
    public var closeTimeout: Double = 5
    /// Queued output above this makes `send` report `.backpressure` (the caller should slow
    /// down or drop optional messages).
    public var sendSoftLimit = 256 * 1024
    /// Queued output above this when another message is sent closes the connection with 4008
    /// (slow consumer): a subscriber that cannot keep up must not grow the server's memory
    /// without bound. Judged before each message, so a single large message still goes out.
    public var sendHardLimit = 4 * 1024 * 1024
    /// Messages smaller than this are sent uncompressed even when deflate was negotiated:
    /// deflate's framing overhead outweighs the savings on tiny payloads.
    public var compressionThreshold = 256

    public init() {}
}
