import COpenSSL

/// A TLS failure: what was being done (`operation`) and why (`message`).
///
/// When OpenSSL is the source, `message` is built from its per-thread error queue, and building
/// it drains that queue. The queue belongs to the thread, not to a connection, so an entry left
/// behind would be blamed on whatever connection the loop thread serves next (and would make
/// `SSL_get_error` report `SSL_ERROR_SSL` for a harmless would-block there).
public struct TLSError: Error, CustomStringConvertible {
    /// What the engine or context was doing, e.g. `"handshake"` or `"load private key"`.
    public var operation: String
    /// Human-readable cause: OpenSSL's error strings joined with `"; "`, or our own text.
    public var message: String

    /// An error with our own text, for failures OpenSSL does not report (limits, bad arguments).
    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }

    /// `"TLS <operation> failed: <message>"`, ready for a log line.
    public var description: String { "TLS \(operation) failed: \(message)" }

    /// Builds an error from (and empties) the calling thread's OpenSSL error queue.
    /// `context` is prefixed to the message, e.g. to name the file being loaded; `fallback` is used
    /// when OpenSSL queued nothing (for instance `SSL_ERROR_SYSCALL` on a memory BIO).
    static func fromOpenSSL(operation: String, context: String? = nil, fallback: String = "unknown OpenSSL error") -> TLSError {
        let queued = OpenSSLErrorQueue.drain()
        var message = queued.isEmpty ? fallback : queued.joined(separator: "; ")
        if let context { message = "\(context): \(message)" }
        return TLSError(operation: operation, message: message)
    }
}
