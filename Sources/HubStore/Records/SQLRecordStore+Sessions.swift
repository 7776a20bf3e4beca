import Foundation

// Diagnostic sessions.
extension SQLRecordStore {
    public func insertSession(_ session: DiagnosticSession) async throws(StoreError) {
        let s = try RecordValidation.session(session)
        _ = try await run(.insert(.sessions, RecordColumns.session(s)))
    }

    public func session(id: UUID) async throws(StoreError) -> DiagnosticSession? {
        try await one(.select(.sessions, where: "id = \(.uuid(id))"), RecordDecoding.session)
    }

    /// Keyset paging on (created_at, id) descending: a row-value comparison against the last
    /// page's last row, so that sessions created between two page reads neither repeat nor
    /// shift the pages (SQLite compares its fixed-width ISO 8601 text timestamps and lowercase
    /// uuid text, which order as PostgreSQL's timestamptz and uuid do).
    public func sessions(orgID: UUID, states: Set<SessionState>?, deviceID: UUID?, before: (createdAt: Date, id: UUID)?,
                         limit: Int) async throws(StoreError) -> [DiagnosticSession] {
        var filter: RecordQuery = "org_id = \(.uuid(orgID))"
        if let states {
            if states.isEmpty { return [] }
            filter.append(" AND state\(isIn: states.map(\.rawValue))")
        }
        if let deviceID { filter.append(" AND device_id = \(.uuid(deviceID))") }
        if let before {
            let createdAt = try RecordValidation.date(before.createdAt, "cursor createdAt")
            filter.append(" AND (created_at, id) < (\(.date(createdAt)), \(.uuid(before.id)))")
        }
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.sessions, where: "\(filter) ORDER BY created_at DESC, id DESC LIMIT \(.int(n))"), RecordDecoding.session)
    }

    public func updateSession(id: UUID, expected: Set<SessionState>?, change: SessionChange) async throws(StoreError) -> RecordUpdate<DiagnosticSession> {
        let set = RecordColumns.sessionChange(try RecordValidation.sessionChange(change))
        return try await conditionalUpdate(.sessions, id: id, condition: expected.map { .stateIn($0.map(\.rawValue)) }, set: set, RecordDecoding.session)
    }

    /// Served by the partial index on pending sessions' `expires_at` (migration 0002).
    public func expiredPendingSessions(now: Date, limit: Int) async throws(StoreError) -> [DiagnosticSession] {
        let now = try RecordValidation.date(now, "now")
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.sessions, where: """
            state = 'pending_approval' AND expires_at <= \(.date(now)) ORDER BY expires_at, id LIMIT \(.int(n))
            """), RecordDecoding.session)
    }
}
