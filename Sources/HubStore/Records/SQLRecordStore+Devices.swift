import Foundation

// Devices and their activation codes.
extension SQLRecordStore {
    // MARK: devices

    public func insertDevice(_ device: Device) async throws(StoreError) {
        let d = try RecordValidation.device(device)
        _ = try await run(.insert(.devices, RecordColumns.device(d)))
    }

    public func device(id: UUID) async throws(StoreError) -> Device? {
        try await one(.select(.devices, where: "id = \(.uuid(id))"), RecordDecoding.device)
    }

    public func devices(orgID: UUID, state: DeviceState?, after: (name: String, id: UUID)?, limit: Int) async throws(StoreError) -> [Device] {
        var filter: RecordQuery = "org_id = \(.uuid(orgID))"
        if let state { filter.append(" AND state = \(.text(state.rawValue))") }
        if let after {
            try RecordValidation.text(after.name, "cursor name")
            // PostgreSQL needs the parameter's type before it can take a collation.
            filter.append(" AND (name\(RecordQuery.bytewise), id) > (\(.text(after.name))\(postgres: "::text", sqlite: "")\(RecordQuery.bytewise), \(.uuid(after.id)))")
        }
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.devices, where: "\(filter) ORDER BY name\(RecordQuery.bytewise), id LIMIT \(.int(n))"), RecordDecoding.device)
    }

    public func updateDevice(id: UUID, expected: Set<DeviceState>?, change: DeviceChange) async throws(StoreError) -> RecordUpdate<Device> {
        let set = RecordColumns.deviceChange(try RecordValidation.deviceChange(change))
        return try await conditionalUpdate(.devices, id: id, condition: expected.map { .stateIn($0.map(\.rawValue)) }, set: set, RecordDecoding.device)
    }

    // MARK: activation codes

    /// The live code of the device is retired and the new one inserted in one transaction (the
    /// schema allows one unused code per device).
    public func insertActivationCode(_ code: ActivationCode) async throws(StoreError) {
        let c = try RecordValidation.activationCode(code)
        var steps: [RecordBatch.Step] = []
        if c.usedAt == nil {
            steps.append(.init(query: """
                UPDATE \(table: .activationCodes) SET used_at = \(.date(c.createdAt)) WHERE device_id = \(.uuid(c.deviceID)) AND used_at IS NULL
                """))
        }
        steps.append(.init(query: .insert(.activationCodes, RecordColumns.activationCode(c))))
        _ = try await database.run(RecordBatch(steps, atomic: true))
    }

    /// One `UPDATE ... WHERE used_at IS NULL AND expires_at > now`: of concurrent redeemers the
    /// first wins (PostgreSQL: it takes the row lock, the others re-check the row after it
    /// commits and match nothing; SQLite: one writer at a time). Only when nothing matched is
    /// the code read back, to tell a used or expired code from a missing one. (SQLite compares
    /// its fixed-width ISO 8601 text timestamps, which order as the instants do.)
    public func redeemActivationCode(codeHash: [UInt8], now: Date) async throws(StoreError) -> ActivationRedemption {
        try RecordValidation.hash(codeHash, "codeHash")
        let now = try RecordValidation.date(now, "now")
        let outcomes = try await database.run(RecordBatch([
            .init(query: """
                UPDATE \(table: .activationCodes) SET used_at = \(.date(now))
                WHERE code_hash = \(.bytes(codeHash)) AND used_at IS NULL AND expires_at > \(.date(now)) RETURNING \(columns: .activationCodes)
                """),
            .init(query: .select(.activationCodes, where: "code_hash = \(.bytes(codeHash))"), when: .firstReturnedNoRows),
        ], atomic: false))
        if let row = outcomes[0]?.rows.first { return .redeemed(try RecordDecoding.activationCode(row)) }
        guard let row = outcomes[1]?.rows.first else { return .notFound }
        let code = try RecordDecoding.activationCode(row)
        if code.usedAt != nil { return .alreadyUsed(code) }
        return .expired(code)
    }
}
