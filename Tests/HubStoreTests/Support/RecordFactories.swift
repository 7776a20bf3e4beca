import Foundation
import HubPostgres
import HubStore
import HubTestSupport
import Testing

/// A `RecordStore` of `backend` on fresh, migrated storage (its own SQLite file or its own
/// PostgreSQL database).
func withRecordStore<T>(_ backend: Backend, _ body: (any RecordStore) async throws -> T) async throws -> T {
    switch backend {
    case .embedded:
        return try await TestEnvironment.withSQLite { db in try await body(SQLiteRecordStore(database: db)) }
    case .redisPostgres, .redisCluster:
        return try await TestEnvironment.withPostgres { pool in try await body(PostgresRecordStore(pool: pool)) }
    }
}

/// A PostgreSQL record store plus `psql` against the same (per-test) database: an independent
/// client to check what the store wrote.
func withPostgresRecordStore<T>(_ body: (PostgresRecordStore, _ psql: (String) throws -> String) async throws -> T) async throws -> T {
    let server = try await TestEnvironment.offPool { try SharedTestServers.shared.postgres() }
    return try await TestEnvironment.withPostgres { pool in
        let rows = try await pool.query("SELECT current_database()")
        let name = try rows[0].decode(String.self, at: 0)
        let url = TestEnvironment.databaseURL(server.url, name)
        let psql: (String) throws -> String = { sql in
            let out = try PostgresTestServer.run(server.tool("psql"), ["-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql, url])
            return out.hasSuffix("\n") ? String(out.dropLast()) : out
        }
        return try await body(PostgresRecordStore(pool: pool), psql)
    }
}

/// A date at a whole millisecond since 1970, as the stores return it.
func at(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

/// `date` truncated to its millisecond, as the stores keep it.
func truncatedToMillis(_ date: Date) -> Date {
    at(Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)))
}

/// A fixed base time (2024-05-01T12:00:00Z) so expected values do not depend on the clock.
let baseMillis: Int64 = 1_714_564_800_000

/// JSON text in a canonical form (sorted keys, no spaces), so that values equal as JSON compare
/// equal as text whatever the backend did to the spacing.
func canonicalJSON(_ text: String) -> String {
    guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
          let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else {
        return "<invalid JSON: \(text)>"
    }
    return String(decoding: data, as: UTF8.self)
}

extension Device {
    var canonical: Device { var d = self; d.metadata = canonicalJSON(metadata); return d }
}

extension CommandRecord {
    var canonical: CommandRecord {
        var c = self
        c.arguments = canonicalJSON(arguments)
        c.result = result.map(canonicalJSON)
        return c
    }
}

extension CommandEvent {
    var canonical: CommandEvent { var e = self; e.detail = canonicalJSON(detail); return e }
}

extension AuditEntry {
    var canonical: AuditEntry { var a = self; a.detail = canonicalJSON(detail); return a }
}

/// An org, a device and a pending session: what most record tests need first.
struct RecordFixture {
    var org: Org
    var device: Device
    var session: DiagnosticSession

    static func make(_ store: any RecordStore, slug: String = "acme") async throws -> RecordFixture {
        let org = Org(name: "Acme", slug: slug, createdAt: at(baseMillis))
        try await store.insertOrg(org)
        let device = Device(orgID: org.id, name: "dev-1", createdAt: at(baseMillis))
        try await store.insertDevice(device)
        let session = DiagnosticSession(orgID: org.id, deviceID: device.id, requestedBy: UUID(), reason: "disk full", createdAt: at(baseMillis))
        try await store.insertSession(session)
        return RecordFixture(org: org, device: device, session: session)
    }

    func command(kind: String = "shell", state: CommandState = .pendingApproval, offset: Int64 = 0) -> CommandRecord {
        CommandRecord(orgID: org.id, sessionID: session.id, deviceID: device.id, kind: kind, arguments: #"{"cmd": "df -h"}"#,
                      state: state, proposedBy: "user-1", expiresAt: at(baseMillis + 3_600_000), createdAt: at(baseMillis + offset))
    }
}

/// Runs `body` and returns the `StoreError` it threw (nil when it did not throw).
func storeError(_ body: () async throws -> Void) async -> StoreError? {
    do {
        try await body()
        return nil
    } catch let e as StoreError {
        return e
    } catch {
        return .backend("not a StoreError: \(error)")
    }
}

extension StoreError {
    var isInvalidArgument: Bool { if case .invalidArgument = self { return true } else { return false } }
    var isConflict: Bool { if case .conflict = self { return true } else { return false } }
}
