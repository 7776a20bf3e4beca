import Foundation
import HubPostgres

// Devices, their activation codes, and diagnostic sessions.
extension PostgresRecordStore {
    // MARK: devices

    public func insertDevice(_ device: Device) async throws(StoreError) {
        let d = try RecordValidation.device(device)
        _ = try await query(try PostgresSQL.insert(.devices, RecordColumns.device(d)))
    }

    public func device(id: UUID) async throws(StoreError) -> Device? {
        try await one(.devices, where: "id = $1", [.uuid(id)], RecordDecoding.device)
    }

    /// Names compare byte-wise (`COLLATE "C"`), as SQLite compares them, so both backends page
    /// in the same order whatever the database's default collation.
    public func devices(orgID: UUID, state: DeviceState?, after: (name: String, id: UUID)?, limit: Int) async throws(StoreError) -> [Device] {
        var params: [PostgresValue?] = [.uuid(orgID)]
        var filter = "org_id = $1"
        if let state { params.append(.text(state.rawValue)); filter += " AND state = $\(params.count)" }
        if let after {
            try RecordValidation.text(after.name, "cursor name")
            params += [.text(after.name), .uuid(after.id)]
            filter += " AND (name COLLATE \"C\", id) > ($\(params.count - 1)::text COLLATE \"C\", $\(params.count))"
        }
        params.append(.int(Int64(StoreLimits.clampBatch(limit))))
        return try await many(.devices, where: "\(filter) ORDER BY name COLLATE \"C\", id LIMIT $\(params.count)", params, RecordDecoding.device)
    }

    public func updateDevice(id: UUID, expected: Set<DeviceState>?, change: DeviceChange) async throws(StoreError) -> RecordUpdate<Device> {
        let set = RecordColumns.deviceChange(try RecordValidation.deviceChange(change))
        return try await Self.conditionalUpdate(pool, .devices, id: id, condition: expected.map { .stateIn($0.map(\.rawValue)) }, set: set, RecordDecoding.device)
    }

    // MARK: activation codes

    public func insertActivationCode(_ code: ActivationCode) async throws(StoreError) {
        let c = try RecordValidation.activationCode(code)
        let insert = try PostgresSQL.insert(.activationCodes, RecordColumns.activationCode(c))
        _ = try await transaction { conn in
            if c.usedAt == nil {
                _ = try await conn.query("UPDATE devicehub.activation_codes SET used_at = $1 WHERE device_id = $2 AND used_at IS NULL",
                                         [.timestamptz(c.createdAt), .uuid(c.deviceID)])
            }
            _ = try await conn.query(insert.sql, insert.params)
        }
    }

    /// One `UPDATE ... WHERE used_at IS NULL AND expires_at > now`: of concurrent redeemers the
    /// first takes the row lock and wins; the others re-check the row after it commits, match
    /// nothing, and read it back as already used.
    public func redeemActivationCode(codeHash: [UInt8], now: Date) async throws(StoreError) -> ActivationRedemption {
        try RecordValidation.hash(codeHash, "codeHash")
        let now = try RecordValidation.date(now, "now")
        let columns = PostgresSQL.columns(.activationCodes)
        let updated = try await query("""
            UPDATE devicehub.activation_codes SET used_at = $2
            WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING \(columns)
            """, [.bytea(codeHash), .timestamptz(now)])
        if let row = updated.first { return .redeemed(try RecordDecoding.activationCode(PostgresRecordCells(row: row))) }
        guard let row = try await query("SELECT \(columns) FROM devicehub.activation_codes WHERE code_hash = $1", [.bytea(codeHash)]).first else {
            return .notFound
        }
        let code = try RecordDecoding.activationCode(PostgresRecordCells(row: row))
        if code.usedAt != nil { return .alreadyUsed(code) }
        return .expired(code)
    }

    // MARK: diagnostic sessions

    public func insertSession(_ session: DiagnosticSession) async throws(StoreError) {
        let s = try RecordValidation.session(session)
        _ = try await query(try PostgresSQL.insert(.sessions, RecordColumns.session(s)))
    }

    public func session(id: UUID) async throws(StoreError) -> DiagnosticSession? {
        try await one(.sessions, where: "id = $1", [.uuid(id)], RecordDecoding.session)
    }

    public func sessions(orgID: UUID, states: Set<SessionState>?, limit: Int) async throws(StoreError) -> [DiagnosticSession] {
        let n = Int64(StoreLimits.clampBatch(limit))
        guard let states else {
            return try await many(.sessions, where: "org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2", [.uuid(orgID), .int(n)], RecordDecoding.session)
        }
        if states.isEmpty { return [] }
        return try await many(.sessions, where: "org_id = $1 AND state = ANY($2::text[]) ORDER BY created_at DESC, id DESC LIMIT $3",
                              [.uuid(orgID), .text(PostgresSQL.textArrayLiteral(states.map(\.rawValue))), .int(n)], RecordDecoding.session)
    }

    public func updateSession(id: UUID, expected: Set<SessionState>?, change: SessionChange) async throws(StoreError) -> RecordUpdate<DiagnosticSession> {
        let set = RecordColumns.sessionChange(try RecordValidation.sessionChange(change))
        return try await Self.conditionalUpdate(pool, .sessions, id: id, condition: expected.map { .stateIn($0.map(\.rawValue)) }, set: set, RecordDecoding.session)
    }
}
