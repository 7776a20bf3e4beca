import HubHTTP
import HubStore

// The problems identity services throw, spelled once. Store failures are not converted here:
// they propagate as `StoreError`, which the server edge already maps (503 + Retry-After for
// outages; see HubServer's StoreProblems). Only store answers that mean something to the
// caller (a duplicate slug, a missing row) become problems, in the services.

extension Problem {
    /// 401 `unauthenticated`: a missing, wrong, expired or revoked credential. One detail per
    /// credential kind, whatever the cause, so that the answer is no oracle.
    public static func unauthenticated(_ detail: String = "invalid credentials") -> Problem {
        Problem(status: 401, code: "unauthenticated", detail: detail)
    }

    /// 403 `forbidden`: authenticated, but the role in this org is too low.
    public static func forbidden(_ detail: String) -> Problem {
        Problem(status: 403, code: "forbidden", detail: detail)
    }

    /// 409 `conflict`: a duplicate, or a row not in a state the operation applies to.
    public static func conflict(_ detail: String) -> Problem {
        Problem(status: 409, code: "conflict", detail: detail)
    }

    /// 400 `invalid_argument`: an input outside its documented limits.
    public static func invalidArgument(_ detail: String) -> Problem {
        Problem(status: 400, code: "invalid_argument", detail: detail)
    }

    /// 429 `rate_limited` with `retryAfterSeconds` (sent as `Retry-After`).
    public static func rateLimited(retryAfterSeconds: Int) -> Problem {
        var problem = Problem(status: 429, code: "rate_limited", detail: "too many requests; retry after \(retryAfterSeconds) s")
        problem.retryAfterSeconds = retryAfterSeconds
        return problem
    }
}

/// Checks of free-text inputs shared by the services: every input has a limit.
enum InputRules {
    /// A display name (org, device, API key): trimmed, 1...200 characters, no control
    /// characters (they corrupt logs and listings; NUL cannot be stored at all).
    static func name(_ raw: String, field: String = "name") throws(Problem) -> String {
        let trimmed = raw.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .invalidArgument("\(field) must not be empty") }
        guard trimmed.count <= 200 else { throw .invalidArgument("\(field) is longer than 200 characters") }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidArgument("\(field) must not contain control characters")
        }
        return trimmed
    }

    /// An agent version string: 1...64 printable ASCII characters.
    static func agentVersion(_ raw: String) throws(Problem) -> String {
        guard (1...64).contains(raw.utf8.count), raw.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw .invalidArgument("agent_version must be 1...64 printable ASCII characters without spaces")
        }
        return raw
    }
}

extension String {
    /// Without leading and trailing whitespace (Unicode's definition), without Foundation.
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
