import Foundation
import HubHTTP
import HubStore
import Logging
import Synchronization

/// The scopes an API key may carry.
public enum APIKeyScope: String, Sendable, CaseIterable {
    /// The admin API (orgs, members, keys); a key without an org must have it.
    case admin
    case devicesRead = "devices:read"
    case devicesWrite = "devices:write"
    case commandsPropose = "commands:propose"
    case sessionsRead = "sessions:read"
    case sessionsWrite = "sessions:write"
}

/// Who a valid API key speaks for.
public struct APIKeyPrincipal: Sendable, Equatable {
    public var keyID: UUID
    /// nil: a hub-wide admin key.
    public var orgID: UUID?
    public var scopes: [String]

    public init(keyID: UUID, orgID: UUID?, scopes: [String]) {
        self.keyID = keyID
        self.orgID = orgID
        self.scopes = scopes
    }

    public func has(_ scope: APIKeyScope) -> Bool { scopes.contains(scope.rawValue) }
}

/// A new key: its record and the whole key text, shown once.
public struct CreatedAPIKey: Sendable, Equatable {
    public var record: APIKeyRecord
    public var key: String
}

/// API keys: creation (the plaintext is returned once, the store keeps the prefix and a hash
/// of the secret), authentication, listing and revocation.
///
/// Errors as in the other services: `Problem` for the caller (400, 401, 404, 409, 429),
/// `StoreError` passing through for store failures.
public struct APIKeyService: Sendable {
    /// Scopes one key carries at most.
    public static let maxScopes = 10
    /// The longest expiry a key may be created with.
    public static let maxExpiryDays = 3_650

    let records: any RecordStore
    let configuration: IdentityConfiguration
    let audit: AuditLog
    let failures: CredentialFailureLimiter
    let touches: APIKeyTouchThrottle
    let logger: Logger

    public init(stores: Stores, configuration: IdentityConfiguration, logger: Logger) {
        self.records = stores.records
        self.configuration = configuration
        self.audit = AuditLog(records: stores.records, logger: logger)
        self.failures = CredentialFailureLimiter(limiter: RateLimiter(counters: stores.counters), logger: logger)
        self.touches = APIKeyTouchThrottle(interval: configuration.apiKeyTouchInterval)
        self.logger = logger
    }

    /// Creates a key. `scopes`: 1...10 of `APIKeyScope` (duplicates dropped); `orgID` may be
    /// nil only with the `admin` scope (a hub-wide key); `expiresInDays`: nil (never) or
    /// 1...3650. 404 when the org does not exist. Audited (`api_key.create`).
    public func create(orgID: UUID?, name: String, scopes: [String], expiresInDays: Int? = nil, by caller: Caller) async throws -> CreatedAPIKey {
        let name = try InputRules.name(name)
        let scopes = try Self.checkedScopes(scopes)
        if orgID == nil && !scopes.contains(APIKeyScope.admin.rawValue) {
            throw Problem.invalidArgument("org_id may be null only for a key with the admin scope")
        }
        if let days = expiresInDays, !(1...Self.maxExpiryDays).contains(days) {
            throw Problem.invalidArgument("expires_in_days must be 1...\(Self.maxExpiryDays)")
        }
        if let orgID, try await records.org(id: orgID) == nil { throw Problem.notFound("no such org") }

        let now = Date.storeNow()
        let expiresAt = expiresInDays.map { now.adding(.seconds(Int64($0) * 86_400)) }
        let (record, key) = try await insertKey { key in
            APIKeyRecord(id: UUID(), orgID: orgID, name: name, prefix: key.prefix, keyHash: key.storedHash, scopes: scopes,
                         expiresAt: expiresAt, revokedAt: nil, lastUsedAt: nil, createdBy: caller.userID, createdAt: now)
        }
        try await audit.record(.apiKeyCreate, by: caller, orgID: orgID, target: .apiKey(record.id),
                               detail: ["name": name, "prefix": key.prefix, "scopes": scopes.joined(separator: " ")])
        return CreatedAPIKey(record: record, key: key.text)
    }

    /// Inserts the record `make` builds for a fresh random key. Prefixes are unique; a
    /// collision (60 random bits) is answered by drawing again.
    private func insertKey(_ make: (APIKeyText) -> APIKeyRecord) async throws(StoreError) -> (APIKeyRecord, APIKeyText) {
        var attempt = 0
        while true {
            let key = APIKeyText.random()
            let record = make(key)
            do {
                try await records.insertAPIKey(record)
                return (record, key)
            } catch .conflict(let message) {
                attempt += 1
                if attempt >= 3 { throw .conflict(message) }
            }
        }
    }

    /// The principal of a presented key (`dhk_…`). Malformed, unknown prefix, wrong secret,
    /// revoked or expired: the same 401, counted against the client's IP and audited
    /// (`api_key.auth_failed`); over the IP's limit: 429. On success `last_used_at` is written
    /// at most once per `apiKeyTouchInterval` per key in this process (best effort).
    public func authenticate(_ presented: String, by caller: Caller) async throws -> APIKeyPrincipal {
        let subjects = [FailureSubject.ip(caller.ip ?? "unknown", configuration.rateLimits.failedAttemptsPerIP)]
        try await failures.ensureAllowed(subjects)
        guard let key = APIKeyText(parsing: presented) else {
            throw await authenticationFailed("malformed", record: nil, subjects, caller)
        }
        let record = try await records.apiKey(prefix: key.prefix)
        // Compared even for an unknown prefix, so that it costs the same time as a wrong secret.
        let matches = key.verify(against: record?.keyHash ?? [UInt8](repeating: 0, count: 32))
        guard let record, matches else {
            throw await authenticationFailed(record == nil ? "unknown_prefix" : "bad_secret", record: record, subjects, caller)
        }
        let now = Date()
        if record.revokedAt != nil { throw await authenticationFailed("revoked", record: record, subjects, caller) }
        if let expiresAt = record.expiresAt, expiresAt <= now { throw await authenticationFailed("expired", record: record, subjects, caller) }

        if touches.shouldTouch(record.id, now: .now) {
            do {
                try await records.touchAPIKey(id: record.id, at: .storeNow())
            } catch {
                logger.warning("api key last_used_at not written", metadata: ["prefix": .string(record.prefix), "error": .string(error.description)])
            }
        }
        return APIKeyPrincipal(keyID: record.id, orgID: record.orgID, scopes: record.scopes)
    }

    private func authenticationFailed(_ reason: String, record: APIKeyRecord?, _ subjects: [FailureSubject], _ caller: Caller) async -> Problem {
        await failures.recordFailure(subjects)
        var detail = ["reason": reason]
        if let record { detail["prefix"] = record.prefix }
        await audit.recordBestEffort(.apiKeyAuthFailed, by: caller, orgID: record?.orgID, target: record.map { .apiKey($0.id) },
                                     outcome: .denied, detail: detail)
        return Problem.unauthenticated("invalid API key")
    }

    /// Keys of one org (nil: hub-wide keys), newest first, at most `limit` (clamped to 1...200).
    public func list(orgID: UUID?, limit: Int = 200) async throws(StoreError) -> [APIKeyRecord] {
        try await records.apiKeys(orgID: orgID, limit: min(max(limit, 1), 200))
    }

    /// The key, or 404 (also when `orgID` is given and the key belongs elsewhere).
    public func key(id: UUID, orgID: UUID? = nil) async throws -> APIKeyRecord {
        guard let record = try await records.apiKey(id: id), orgID == nil || record.orgID == orgID else {
            throw Problem.notFound("no such API key")
        }
        return record
    }

    /// Revokes the key (it stops authenticating at once: every authentication reads the
    /// record). 404 when unknown (or in another org, with `orgID`); 409 when already revoked.
    /// Audited (`api_key.revoke`).
    public func revoke(id: UUID, orgID: UUID? = nil, by caller: Caller) async throws -> APIKeyRecord {
        _ = try await key(id: id, orgID: orgID)
        switch try await records.revokeAPIKey(id: id, at: .storeNow()) {
        case .updated(let record):
            try await audit.record(.apiKeyRevoke, by: caller, orgID: record.orgID, target: .apiKey(id), detail: ["prefix": record.prefix])
            return record
        case .conflict:
            throw Problem.conflict("API key is already revoked")
        case .notFound:
            throw Problem.notFound("no such API key")
        }
    }

    /// 1...10 known scopes, duplicates dropped (first occurrence kept).
    static func checkedScopes(_ scopes: [String]) throws(Problem) -> [String] {
        guard (1...maxScopes).contains(scopes.count) else { throw .invalidArgument("scopes must have 1...\(maxScopes) entries") }
        var seen = [String]()
        for scope in scopes {
            guard APIKeyScope(rawValue: scope) != nil else {
                throw .invalidArgument("unknown scope \"\(String(scope.prefix(40)))\"; known: " + APIKeyScope.allCases.map(\.rawValue).joined(separator: ", "))
            }
            if !seen.contains(scope) { seen.append(scope) }
        }
        return seen
    }
}

/// When this process last wrote each key's `last_used_at`, so that a busy key costs one
/// database write a minute rather than one per request. Per process: N nodes write at most N
/// times a minute, which is fine for a "last used" column.
final class APIKeyTouchThrottle: Sendable {
    /// Keys remembered at most; beyond it, entries older than the interval are dropped (and if
    /// that is not enough, all are: the cost is one extra write per key).
    static let capacity = 10_000

    private let interval: Duration
    private let lastTouch = Mutex<[UUID: ContinuousClock.Instant]>([:])

    init(interval: Duration) { self.interval = interval }

    /// True (and the time noted) when `id` was not touched within the interval before `now`.
    func shouldTouch(_ id: UUID, now: ContinuousClock.Instant) -> Bool {
        lastTouch.withLock { table in
            if let last = table[id], now - last < interval { return false }
            if table.count >= Self.capacity {
                table = table.filter { now - $0.value < interval }
                if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            }
            table[id] = now
            return true
        }
    }
}
