import Foundation
import HubSQLite

// Devices, their activation codes, and diagnostic sessions.
extension SQLiteRecordStore {
    // MARK: devices

    public func insertDevice(_ device: Device) async throws(StoreError) {
        let d = try RecordValidation.device(device)
        let statement = try SQLiteSQL.insert(.devices, RecordColumns.device(d))
        _ = try await run { try $0.execute(statement.sql, statement.params) }
    }

    public func device(id: UUID) async throws(StoreError) -> Device? {
        try await one(.devices, where: "id = ?1", [.uuid(id)], RecordDecoding.device)
    }

    public func devices(orgID: UUID, state: DeviceState?, after: (name: String, id: UUID)?, limit: Int) async throws(StoreError) -> [Device] {
        var params: [SQLiteValue?] = [.uuid(orgID)]
        var filter = "org_id = ?1"
        if let state { params.append(.text(state.rawValue)); filter += " AND state = ?\(params.count)" }
        if let after {
            try RecordValidation.text(after.name, "cursor name")
            params += [.text(after.name), .uuid(after.id)]
            filter += " AND (name, id) > (?\(params.count - 1), ?\(params.count))"
        }
        params.append(.integer(Int64(StoreLimits.clampBatch(limit))))
        return try await many(.devices, where: "\(filter) ORDER BY name, id LIMIT ?\(params.count)", params, RecordDecoding.device)
    }

    public func updateDevice(id: UUID, expected: Set<DeviceState>?, change: DeviceChange) async throws(StoreError) -> RecordUpdate<Device> {
        let set = RecordColumns.deviceChange(try RecordValidation.deviceChange(change))
        let condition = expected.map { RecordCondition.stateIn($0.map(\.rawValue)) }
        return try await transaction { conn in
            try Self.conditionalUpdate(conn, .devices, id: id, condition: condition, set: set, RecordDecoding.device)
        }
    }

    // MARK: activation codes

    public func insertActivationCode(_ code: ActivationCode) async throws(StoreError) {
        let c = try RecordValidation.activationCode(code)
        let statement = try SQLiteSQL.insert(.activationCodes, RecordColumns.activationCode(c))
        _ = try await transaction { conn in
            if c.usedAt == nil {
                try conn.execute("UPDATE activation_codes SET used_at = ?1 WHERE device_id = ?2 AND used_at IS NULL", [.date(c.createdAt), .uuid(c.deviceID)])
            }
            try conn.execute(statement.sql, statement.params)
        }
    }

    public func redeemActivationCode(codeHash: [UInt8], now: Date) async throws(StoreError) -> ActivationRedemption {
        try RecordValidation.hash(codeHash, "codeHash")
        let now = try RecordValidation.date(now, "now")
        let columns = SQLiteSQL.columns(.activationCodes)
        return try await transaction { conn in
            guard let row = try conn.query("SELECT \(columns) FROM activation_codes WHERE code_hash = ?1", [.blob(codeHash)]).first else { return .notFound }
            let code = try RecordDecoding.activationCode(SQLiteRecordCells(row: row))
            if code.usedAt != nil { return .alreadyUsed(code) }
            if code.expiresAt <= now { return .expired(code) }
            guard let updated = try conn.query("UPDATE activation_codes SET used_at = ?1 WHERE id = ?2 RETURNING \(columns)", [.date(now), .uuid(code.id)]).first else {
                throw StoreError.backend("activation code vanished inside its transaction")
            }
            return .redeemed(try RecordDecoding.activationCode(SQLiteRecordCells(row: updated)))
        }
    }

    // MARK: diagnostic sessions

    public func insertSession(_ session: DiagnosticSession) async throws(StoreError) {
        let s = try RecordValidation.session(session)
        let statement = try SQLiteSQL.insert(.sessions, RecordColumns.session(s))
        _ = try await run { try $0.execute(statement.sql, statement.params) }
    }

    public func session(id: UUID) async throws(StoreError) -> DiagnosticSession? {
        try await one(.sessions, where: "id = ?1", [.uuid(id)], RecordDecoding.session)
    }

    public func sessions(orgID: UUID, states: Set<SessionState>?, limit: Int) async throws(StoreError) -> [DiagnosticSession] {
        let n = Int64(StoreLimits.clampBatch(limit))
        guard let states else {
            return try await many(.sessions, where: "org_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2", [.uuid(orgID), .integer(n)], RecordDecoding.session)
        }
        if states.isEmpty { return [] }
        let list = try RecordValue.jsonArray(states.map(\.rawValue).sorted())
        return try await many(.sessions, where: "org_id = ?1 AND state IN (SELECT value FROM json_each(?2)) ORDER BY created_at DESC, id DESC LIMIT ?3",
                              [.uuid(orgID), .text(list), .integer(n)], RecordDecoding.session)
    }

    public func updateSession(id: UUID, expected: Set<SessionState>?, change: SessionChange) async throws(StoreError) -> RecordUpdate<DiagnosticSession> {
        let set = RecordColumns.sessionChange(try RecordValidation.sessionChange(change))
        let condition = expected.map { RecordCondition.stateIn($0.map(\.rawValue)) }
        return try await transaction { conn in
            try Self.conditionalUpdate(conn, .sessions, id: id, condition: condition, set: set, RecordDecoding.session)
        }
    }
}
