/// What the record store runs its statements on: a PostgreSQL pool or a SQLite database. The
/// store describes every statement once (`RecordQuery`) and decodes every row once
/// (`RecordDecoding` over `RecordCells`); a database only renders statements in its dialect,
/// binds the parameters as its driver wants them, runs them, and hands back rows.
///
/// Work of several statements comes as one `RecordBatch`, not as a closure over a connection:
/// SQLite runs a whole batch as one job on its database thread (its transaction must not span
/// a suspension, where another caller's statement would run inside it), PostgreSQL on one
/// pooled connection inside `BEGIN ... COMMIT` when the batch is atomic.
protocol RecordDatabase: Sendable {
    var dialect: RecordDialect { get }

    /// Runs the batch's steps in order, each only when its condition holds, and returns one
    /// outcome per step (nil for a step skipped).
    func run(_ batch: RecordBatch) async throws(StoreError) -> [RecordOutcome?]
}

/// Statements that run together, in order.
struct RecordBatch {
    /// When a step runs, judged on the outcome of the batch's first step: enough for every
    /// "write, then read back or log an event" sequence the store has.
    enum Condition {
        case always
        case firstReturnedRows
        case firstReturnedNoRows

        func holds(first: RecordOutcome?) -> Bool {
            switch self {
            case .always: return true
            case .firstReturnedRows: return first?.rows.isEmpty == false
            case .firstReturnedNoRows: return first?.rows.isEmpty != false
            }
        }
    }

    struct Step {
        var query: RecordQuery
        var when: Condition = .always
    }

    var steps: [Step]
    /// In one transaction (all or nothing). Otherwise each statement on its own, as a single
    /// statement would run: PostgreSQL may use a different pooled connection for each.
    var atomic: Bool

    init(_ steps: [Step], atomic: Bool) {
        self.steps = steps
        self.atomic = atomic
    }
}

/// What one statement gave back.
struct RecordOutcome: Sendable {
    var rows: [any RecordCells]
    /// Rows inserted, updated or deleted (for a statement without a select list).
    var affectedRows: Int
}
