import Foundation
import HubPostgres

// API keys.
extension PostgresRecordStore {
    public func insertAPIKey(_ key: APIKeyRecord) async throws(StoreError) {
        let k = try RecordValidation.apiKey(key)
        _ = try await query(try PostgresSQL.insert(.apiKeys, RecordColumns.apiKey(k)))
    }

    public func apiKey(id: UUID) async throws(StoreError) -> APIKeyRecord? {
        try await one(.apiKeys, where: "id = $1", [.uuid(id)], RecordDecoding.apiKey)
    }

    public func apiKey(prefix: String) async throws(StoreError) -> APIKeyRecord? {
        guard RecordValidation.isAPIKeyPrefix(prefix) else { return nil }
        return try await one(.apiKeys, where: "prefix = $1", [.text(prefix)], RecordDecoding.apiKey)
    }

    public func apiKeys(orgID: UUID?, limit: Int) async throws(StoreError) -> [APIKeyRecord] {
        let n = Int64(StoreLimits.clampBatch(limit))
        guard let orgID else {
            return try await many(.apiKeys, where: "org_id IS NULL ORDER BY created_at DESC, id LIMIT $1", [.int(n)], RecordDecoding.apiKey)
        }
        return try await many(.apiKeys, where: "org_id = $1 ORDER BY created_at DESC, id LIMIT $2", [.uuid(orgID), .int(n)], RecordDecoding.apiKey)
    }

    /// `WHERE revoked_at IS NULL` in the one UPDATE: of two racing revocations exactly one
    /// matches, the other reads the key back as a conflict.
    public func revokeAPIKey(id: UUID, at: Date) async throws(StoreError) -> RecordUpdate<APIKeyRecord> {
        let at = try RecordValidation.date(at, "at")
        return try await Self.conditionalUpdate(pool, .apiKeys, id: id, condition: .isNull("revoked_at"),
                                                set: [("revoked_at", .date(at))], RecordDecoding.apiKey)
    }

    public func touchAPIKey(id: UUID, at: Date) async throws(StoreError) {
        let at = try RecordValidation.date(at, "at")
        _ = try await query("UPDATE devicehub.api_keys SET last_used_at = $2 WHERE id = $1", [.uuid(id), .timestamptz(at)])
    }
}
