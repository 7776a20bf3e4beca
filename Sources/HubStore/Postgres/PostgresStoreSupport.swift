import HubPostgres

extension StoreError {
    /// How a PostgreSQL failure reads to the domain. SQLSTATE classes decide: 23505 (unique) is a
    /// `conflict`; 23502/23503/23514 and class 22 (bad data) are `invalidArgument`; connection
    /// trouble and an exhausted pool are `unavailable`.
    init(_ error: PostgresError) {
        switch error {
        case .connection(let m), .poolExhausted(let m): self = .unavailable(m)
        case .timeout: self = .timeout
        case .invalidParameter(let m): self = .invalidArgument(m)
        case .decoding(let m): self = .backend(m)
        case .server(let state, let m):
            if state == "23505" { self = .conflict(m) }
            else if state.hasPrefix("23") || state.hasPrefix("22") { self = .invalidArgument(m) }
            else { self = .backend("\(state): \(m)") }
        }
    }

    /// Maps any error a `PostgresPool` call may throw (`transaction` bodies throw untyped).
    static func fromPostgres(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? PostgresError { return StoreError(e) }
        return .backend("\(error)")
    }
}
