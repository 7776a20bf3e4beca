import Foundation
import HubSQLite

// API keys.
extension SQLiteRecordStore {
    public func insertAPIKey(_ key: APIKeyRecord) async throws(StoreError) {
        let k = try RecordValidation.apiKey(key)
        let statement = try SQLiteSQL.insert(.apiKeys, RecordColumns.apiKey(k))
        _ = try await run { try $0.execute(statement.sql, statement.params) }
    }

    public func apiKey(id: UUID) async throws(StoreError) -> APIKeyRecord? {
        try await one(.apiKeys, where: "id = ?1", [.uuid(id)], RecordDecoding.apiKey)
    }

    public func apiKey(prefix: String) async throws(StoreError) -> APIKeyRecord? {
        guard RecordValidation.isAPIKeyPrefix(prefix) else { return nil }
        return try await one(.apiKeys, where: "prefix = ?1", [.text(prefix)], RecordDecoding.apiKey)
    }

    public func apiKeys(orgID: UUID?, limit: Int) async throws(StoreError) -> [APIKeyRecord] {
        let n = Int64(StoreLimits.clampBatch(limit))
        guard let orgID else {
            return try await many(.apiKeys, where: "org_id IS NULL ORDER BY created_at DESC, id LIMIT ?1", [.integer(n)], RecordDecoding.apiKey)
        }
        return try await many(.apiKeys, where: "org_id = ?1 ORDER BY created_at DESC, id LIMIT ?2", [.uuid(orgID), .integer(n)], RecordDecoding.apiKey)
    }

    public func revokeAPIKey(id: UUID, at: Date) async throws(StoreError) -> RecordUpdate<APIKeyRecord> {
        let at = try RecordValidation.date(at, "at")
        return try await transaction { conn in
            try Self.conditionalUpdate(conn, .apiKeys, id: id, condition: .isNull("revoked_at"), set: [("revoked_at", .date(at))], RecordDecoding.apiKey)
        }
    }

    public func touchAPIKey(id: UUID, at: Date) async throws(StoreError) {
        let at = try RecordValidation.date(at, "at")
        _ = try await run { try $0.execute("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1", [.uuid(id), .date(at)]) }
    }
}
