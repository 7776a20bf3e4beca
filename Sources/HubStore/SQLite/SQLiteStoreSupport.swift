import HubSQLite

extension StoreError {
    /// How a SQLite failure reads to the domain: UNIQUE/PRIMARY KEY violations are `conflict`,
    /// other constraints `invalidArgument`, a database locked past its busy timeout `unavailable`.
    init(_ error: SQLiteError) {
        // 2067 SQLITE_CONSTRAINT_UNIQUE, 1555 SQLITE_CONSTRAINT_PRIMARYKEY.
        if error.code == 2067 || error.code == 1555 { self = .conflict(error.message) }
        else if error.isConstraintViolation { self = .invalidArgument(error.message) }
        else if error.isBusy || error.code == 21 { self = .unavailable(error.message) }
        else { self = .backend(error.description) }
    }

    /// Maps any error a `SQLiteDatabase` call may throw (`transaction` bodies throw untyped).
    static func fromSQLite(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? SQLiteError { return StoreError(e) }
        return .backend("\(error)")
    }
}
