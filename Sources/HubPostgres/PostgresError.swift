/// Everything that can go wrong talking to PostgreSQL, as one small enum so callers can map
/// each case to a response (503 for `connection`/`poolExhausted`/`timeout`, 409 or 400 for some
/// `server` states, 500 for `decoding`) without parsing messages.
public enum PostgresError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server could not be reached, the connection broke, or the pool is shut down. Safe to
    /// retry later; `/readyz` should report not ready while these happen.
    case connection(String)
    /// The server answered with an error. `sqlState` is the five-character SQLSTATE code
    /// (`23505` unique violation, `40001` serialization failure, ...).
    case server(sqlState: String, message: String)
    /// The statement did not finish in time: either the server's `statement_timeout` cancelled
    /// it (SQLSTATE 57014) or the client-side deadline passed first.
    case timeout(String)
    /// No connection could be had: every connection was busy and the wait queue was full, or the
    /// wait for a free connection took longer than the pool's `acquireTimeout`.
    case poolExhausted(String)
    /// A value could not be turned into the requested Swift type (wrong type, NULL into a
    /// non-optional, malformed text, unknown column).
    case decoding(String)
    /// A parameter cannot be sent as given (a NUL byte in a text value: PostgreSQL's text types
    /// cannot hold one; use `.bytea`).
    case invalidParameter(String)

    public var description: String {
        switch self {
        case .connection(let m): return "postgres connection error: \(m)"
        case .server(let code, let m): return "postgres error \(code): \(m)"
        case .timeout(let m): return "postgres timeout: \(m)"
        case .poolExhausted(let m): return "postgres pool exhausted: \(m)"
        case .decoding(let m): return "postgres decoding error: \(m)"
        case .invalidParameter(let m): return "postgres invalid parameter: \(m)"
        }
    }

    /// A short, stable label for metrics (`kind` label of `devicehub_postgres_errors_total`).
    public var kind: String {
        switch self {
        case .connection: return "connection"
        case .server: return "server"
        case .timeout: return "timeout"
        case .poolExhausted: return "pool_exhausted"
        case .decoding: return "decoding"
        case .invalidParameter: return "invalid_parameter"
        }
    }

    /// Maps a server error to the case a caller should see. Cancellation (57014, whether by
    /// `statement_timeout` or by our own cancel request) is a timeout; class 08 (connection
    /// exception) and the 57P0x shutdown codes mean the connection is gone.
    static func fromServer(sqlState: String, message: String) -> PostgresError {
        if sqlState == "57014" { return .timeout(message) }
        if sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03" {
            return .connection("\(sqlState): \(message)")
        }
        return .server(sqlState: sqlState, message: message)
    }

    /// True when the connection that produced this error can not be reused.
    var breaksConnection: Bool {
        if case .connection = self { return true }
        return false
    }
}
