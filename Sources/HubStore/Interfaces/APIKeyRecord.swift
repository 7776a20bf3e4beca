import struct Foundation.Date
import struct Foundation.UUID

/// A service integration's API key as stored: the visible prefix (how a presented key is found)
/// and a hash of its secret, never the secret itself. Mirrors `api_keys` of
/// `protocol/sql/0001_initial.sql`; the conventions of `Records.swift` apply.
public struct APIKeyRecord: Sendable, Equatable {
    public var id: UUID
    /// nil: a hub-wide (admin) key.
    public var orgID: UUID?
    /// 1...200 characters.
    public var name: String
    /// Unique, 6...32 characters.
    public var prefix: String
    /// Hash of the key's secret (1...512 bytes).
    public var keyHash: [UInt8]
    /// At most 32, each `[a-z][a-z0-9:_-]{0,63}` (e.g. `admin`, `devices:read`).
    public var scopes: [String]
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var lastUsedAt: Date?
    public var createdBy: UUID?
    public var createdAt: Date

    public init(id: UUID = UUID(), orgID: UUID?, name: String, prefix: String, keyHash: [UInt8], scopes: [String] = [],
                expiresAt: Date? = nil, revokedAt: Date? = nil, lastUsedAt: Date? = nil, createdBy: UUID? = nil,
                createdAt: Date = Date()) {
        self.id = id
        self.orgID = orgID
        self.name = name
        self.prefix = prefix
        self.keyHash = keyHash
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}
