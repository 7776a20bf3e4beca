import HubHTTP
import HubStore

/// How a store failure reads to an HTTP client: one mapping for every endpoint, so that a
/// Redis or PostgreSQL outage looks the same everywhere (503 + `Retry-After`, the hub
/// reconnecting meanwhile) and a backend's own message never reaches a client.
extension StoreError {
    /// Every code this mapping produces, with its status (documented in `protocol/errors.md`).
    public static let catalogue: [(code: String, status: Int)] = [
        ("dependency_unavailable", 503), ("dependency_timeout", 503),
        ("invalid_argument", 400), ("conflict", 409), ("internal_error", 500),
    ]

    /// Seconds a client should wait before retrying a transient failure.
    static let retryAfterSeconds = 1

    var problemCode: (code: String, status: Int) {
        switch self {
        case .unavailable: return ("dependency_unavailable", 503)
        case .timeout: return ("dependency_timeout", 503)
        case .invalidArgument: return ("invalid_argument", 400)
        case .conflict: return ("conflict", 409)
        case .backend: return ("internal_error", 500)
        }
    }

    /// What the client may read: the caller's own mistake is explained; for everything else
    /// the detail says what happened in general terms (the log line has the backend's words).
    var clientDetail: String {
        switch self {
        case .unavailable: return "a data store is unavailable; retry shortly"
        case .timeout: return "a data store did not answer in time; retry shortly"
        case .invalidArgument(let m), .conflict(let m): return m
        case .backend: return "internal error; the log line with this request_id has details"
        }
    }
}

extension RequestContext {
    /// The problem response for a store failure: its status and stable code, the request's id,
    /// and `Retry-After` on the transient ones. Logs the backend's message (at error level for
    /// a `backend` failure, which is a bug).
    public func problem(_ error: StoreError) -> Response {
        let (code, status) = error.problemCode
        if case .backend = error {
            logger.error("store failure", metadata: ["error": .string(error.description)])
        } else if error.isTransient {
            logger.warning("store unavailable", metadata: ["error": .string(error.description)])
        }
        var response = problem(status, code, error.clientDetail)
        if error.isTransient { response.headers.add(name: "Retry-After", value: String(StoreError.retryAfterSeconds)) }
        return response
    }
}
