import Foundation

// What the command queue's cap, reaper and metrics read across commands. The state lists are
// literal SQL (not parameters) so that PostgreSQL can match them to the partial indexes of
// unfinished commands.
extension SQLRecordStore {
    /// Served by the partial index on unfinished commands' device_id (migration 0002).
    public func unfinishedCommandCount(deviceID: UUID) async throws(StoreError) -> Int {
        let count = try await one("""
            SELECT \(selecting: "count(*)") FROM \(table: .commands)
            WHERE device_id = \(.uuid(deviceID)) AND state IN ('pending_approval', 'queued', 'claimed')
            """) { c throws(StoreError) in try c.int(0) }
        return Int(count ?? 0)
    }

    public func expiredPendingCommands(now: Date, limit: Int) async throws(StoreError) -> [CommandRecord] {
        let now = try RecordValidation.date(now, "now")
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.commands, where: """
            state = 'pending_approval' AND expires_at <= \(.date(now)) ORDER BY seq LIMIT \(.int(n))
            """), RecordDecoding.command)
    }

    /// One GROUP BY over the TTL index's rows. The groups are few (orgs × 3 states × 3
    /// priorities), so they are put in the documented order here rather than by SQL, whose
    /// text ordering would follow the database's collation.
    public func queueDepth(orgIDs: [UUID]?, now: Date) async throws(StoreError) -> [QueueDepthRow] {
        let now = try RecordValidation.date(now, "now")
        var filter: RecordQuery = "state IN ('pending_approval', 'queued', 'claimed') AND expires_at > \(.date(now))"
        if let orgIDs {
            let ids = try RecordValidation.ids(orgIDs)
            if ids.isEmpty { return [] }
            filter.append(" AND org_id\(isIn: ids.map { $0.uuidString.lowercased() }, postgresType: "uuid")")
        }
        let rows = try await many("""
            SELECT \(selecting: "org_id, state, priority, count(*), min(created_at)") FROM \(table: .commands)
            WHERE \(filter) GROUP BY org_id, state, priority
            """, RecordDecoding.queueDepthRow)
        // Lowercase uuid text orders as PostgreSQL orders uuids (and as SQLite stores them).
        return rows.sorted { a, b in
            let (x, y) = (a.orgID.uuidString.lowercased(), b.orgID.uuidString.lowercased())
            if x != y { return x < y }
            if a.state != b.state { return Self.unfinishedRank(a.state) < Self.unfinishedRank(b.state) }
            return a.priority.rank < b.priority.rank
        }
    }

    /// pendingApproval, queued, claimed: the order a command goes through them.
    private static func unfinishedRank(_ state: CommandState) -> Int {
        CommandState.allCases.firstIndex(of: state) ?? Int.max
    }
}
