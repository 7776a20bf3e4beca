import Foundation

// API keys.
extension SQLRecordStore {
    public func insertAPIKey(_ key: APIKeyRecord) async throws(StoreError) {
        let k = try RecordValidation.apiKey(key)
        _ = try await run(.insert(.apiKeys, RecordColumns.apiKey(k)))
    }

    public func apiKey(id: UUID) async throws(StoreError) -> APIKeyRecord? {
        try await one(.select(.apiKeys, where: "id = \(.uuid(id))"), RecordDecoding.apiKey)
    }

    public func apiKey(prefix: String) async throws(StoreError) -> APIKeyRecord? {
        guard RecordValidation.isAPIKeyPrefix(prefix) else { return nil }
        return try await one(.select(.apiKeys, where: "prefix = \(.text(prefix))"), RecordDecoding.apiKey)
    }

    public func apiKeys(orgID: UUID?, limit: Int) async throws(StoreError) -> [APIKeyRecord] {
        let owner: RecordQuery = orgID.map { "org_id = \(.uuid($0))" } ?? "org_id IS NULL"
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.apiKeys, where: "\(owner) ORDER BY created_at DESC, id LIMIT \(.int(n))"), RecordDecoding.apiKey)
    }

    /// `revoked_at IS NULL` is the update's condition: of two racing revocations exactly one
    /// matches, the other reads the key back as a conflict.
    public func revokeAPIKey(id: UUID, at: Date) async throws(StoreError) -> RecordUpdate<APIKeyRecord> {
        let at = try RecordValidation.date(at, "at")
        return try await conditionalUpdate(.apiKeys, id: id, condition: .isNull("revoked_at"), set: [("revoked_at", .date(at))], RecordDecoding.apiKey)
    }

    public func touchAPIKey(id: UUID, at: Date) async throws(StoreError) {
        let at = try RecordValidation.date(at, "at")
        _ = try await run("UPDATE \(table: .apiKeys) SET last_used_at = \(.date(at)) WHERE id = \(.uuid(id))")
    }
}
