import HubHTTP
import HubStore

// The problems of the queue and approval API, spelled once.

extension Problem {
    /// 409 `conflict` carrying the record's current state: an illegal transition.
    static func illegalTransition(_ detail: String, state: String) -> Problem {
        var problem = Problem(status: 409, code: "conflict", detail: detail)
        problem.state = state
        return problem
    }

    /// 409 `lease_conflict`: a stale, foreign or lapsed lease, or a command that ended; with its state.
    static func leaseConflict(state: String, _ detail: String = "the lease is not current") -> Problem {
        var problem = Problem(status: 409, code: "lease_conflict", detail: detail)
        problem.state = state
        return problem
    }

    /// 429 `queue_full` with `Retry-After`.
    static func queueFull(cap: Int) -> Problem {
        var problem = Problem(status: 429, code: "queue_full", detail: "the device has \(cap) unfinished commands; wait for some to finish")
        problem.retryAfterSeconds = 5
        return problem
    }

    /// 403 `forbidden` for self-approval under four eyes.
    static func fourEyes(_ what: String) -> Problem {
        Problem(status: 403, code: "forbidden", detail: "four eyes: the \(what) must be approved by someone other than who asked for it")
    }

    /// 503 `queue_rebuilding`: the hot queue is being rebuilt from the records; retry shortly.
    static var queueRebuilding: Problem {
        var problem = Problem(status: 503, code: "queue_rebuilding", detail: "the queue is being rebuilt from the records; retry shortly")
        problem.retryAfterSeconds = 1
        return problem
    }

    static func invalid(_ detail: String) -> Problem { Problem(status: 400, code: "invalid_argument", detail: detail) }
    static func missing(_ what: String) -> Problem { Problem(status: 404, code: "not_found", detail: "no such \(what)") }
}
