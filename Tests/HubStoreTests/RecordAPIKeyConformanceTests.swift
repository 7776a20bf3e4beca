import Foundation
import HubStore
import Testing

/// `RecordStore` conformance, part 5: API keys, on both backends.
@Suite("RecordStore conformance: API keys")
struct RecordAPIKeyConformanceTests {
    /// A key of `orgID` with every optional field empty.
    static func key(_ orgID: UUID?, prefix: String, createdAt: Int64 = baseMillis, scopes: [String] = ["devices:read"]) -> APIKeyRecord {
        APIKeyRecord(orgID: orgID, name: "ci", prefix: prefix, keyHash: Array(prefix.utf8), scopes: scopes, createdAt: at(createdAt))
    }

    @Test(arguments: Backend.recordBackends)
    func apiKeyRoundTripsEveryField(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let full = APIKeyRecord(orgID: f.org.id, name: "Deploy bot 🚀 'x'", prefix: "ABCdef234567", keyHash: (0...255).map(UInt8.init) + [0],
                                    scopes: ["devices:read", "devices:write", "commands:propose"], expiresAt: at(baseMillis + 86_400_000),
                                    revokedAt: at(baseMillis + 2), lastUsedAt: at(baseMillis + 1), createdBy: UUID(), createdAt: at(baseMillis))
            try await store.insertAPIKey(full)
            #expect(try await store.apiKey(id: full.id) == full)
            #expect(try await store.apiKey(prefix: "ABCdef234567") == full)
            // Hub-wide, no scopes, optional fields empty; precise dates are kept to the millisecond.
            var plain = APIKeyRecord(orgID: nil, name: "a", prefix: "zzzzzz", keyHash: [0], scopes: [],
                                     createdAt: Date(timeIntervalSince1970: Double(baseMillis) / 1000 + 0.000_5))
            try await store.insertAPIKey(plain)
            plain.createdAt = at(baseMillis)
            #expect(try await store.apiKey(id: plain.id) == plain)

            #expect(try await store.apiKey(id: UUID()) == nil)
            #expect(try await store.apiKey(prefix: "abcdef234567") == nil, "prefixes are case-sensitive")
            // Strings no stored prefix can be are simply not found (callers pass what clients sent).
            for absent in ["", "short", String(repeating: "a", count: 33), "abc\u{0}defg", "' OR '1'='1"] {
                #expect(try await store.apiKey(prefix: absent) == nil, "\(absent.debugDescription)")
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func duplicatePrefixOrIDIsConflictAndUnknownOrgInvalid(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let key = Self.key(f.org.id, prefix: "dup-prefix")
            try await store.insertAPIKey(key)
            let samePrefix = await storeError { try await store.insertAPIKey(Self.key(nil, prefix: "dup-prefix")) }
            #expect(samePrefix?.isConflict == true, "\(String(describing: samePrefix))")
            var sameID = Self.key(f.org.id, prefix: "other-prefix")
            sameID.id = key.id
            let e = await storeError { try await store.insertAPIKey(sameID) }
            #expect(e?.isConflict == true, "\(String(describing: e))")
            let orphan = await storeError { try await store.insertAPIKey(Self.key(UUID(), prefix: "orphan")) }
            #expect(orphan?.isInvalidArgument == true, "\(String(describing: orphan))")
            #expect(try await store.apiKey(prefix: "dup-prefix") == key)
            #expect(try await store.apiKey(prefix: "other-prefix") == nil)
            #expect(try await store.apiKeys(orgID: nil, limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func listsNewestFirstByOrgOrHubWide(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let other = Org(name: "Other", slug: "other")
            try await store.insertOrg(other)
            // Two keys share a createdAt: id ascending breaks the tie.
            let k1 = Self.key(f.org.id, prefix: "org-k1", createdAt: baseMillis)
            let k2 = Self.key(f.org.id, prefix: "org-k2", createdAt: baseMillis + 20)
            let k3 = Self.key(f.org.id, prefix: "org-k3", createdAt: baseMillis + 10)
            let k4 = Self.key(f.org.id, prefix: "org-k4", createdAt: baseMillis + 10)
            let hub1 = Self.key(nil, prefix: "hub-k1", createdAt: baseMillis + 5, scopes: ["admin"])
            let hub2 = Self.key(nil, prefix: "hub-k2", createdAt: baseMillis + 6, scopes: ["admin"])
            for k in [k1, k2, k3, k4, hub1, hub2, Self.key(other.id, prefix: "other-k1")] { try await store.insertAPIKey(k) }
            _ = try await store.revokeAPIKey(id: k1.id, at: at(baseMillis + 30))

            let tied = [k3, k4].sorted { $0.id.uuidString.lowercased() < $1.id.uuidString.lowercased() }
            #expect(try await store.apiKeys(orgID: f.org.id, limit: 10).map(\.prefix) == ["org-k2"] + tied.map(\.prefix) + ["org-k1"],
                    "revoked keys are listed too")
            #expect(try await store.apiKeys(orgID: f.org.id, limit: 2).map(\.prefix) == ["org-k2", tied[0].prefix])
            #expect(try await store.apiKeys(orgID: nil, limit: 10) == [hub2, hub1])
            #expect(try await store.apiKeys(orgID: other.id, limit: 0).map(\.prefix) == ["other-k1"], "limit is clamped to at least 1")
            #expect(try await store.apiKeys(orgID: UUID(), limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func revokeOnceThenConflict(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let key = Self.key(f.org.id, prefix: "revoke-me")
            try await store.insertAPIKey(key)
            var revoked = key
            revoked.revokedAt = at(baseMillis + 100)
            #expect(try await store.revokeAPIKey(id: key.id, at: Date(timeIntervalSince1970: Double(baseMillis + 100) / 1000 + 0.0004)) == .updated(revoked))
            // The second revocation changes nothing and returns the key as it is.
            #expect(try await store.revokeAPIKey(id: key.id, at: at(baseMillis + 200)) == .conflict(current: revoked))
            #expect(try await store.apiKey(id: key.id) == revoked)
            #expect(try await store.revokeAPIKey(id: UUID(), at: at(baseMillis)) == .notFound)
            let bad = await storeError { _ = try await store.revokeAPIKey(id: key.id, at: Date(timeIntervalSince1970: .infinity)) }
            #expect(bad?.isInvalidArgument == true)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func concurrentRevocationsHaveOneWinner(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let key = Self.key(nil, prefix: "raced-key")
            try await store.insertAPIKey(key)
            let results = try await withThrowingTaskGroup(of: RecordUpdate<APIKeyRecord>.self) { group in
                for i in 0..<8 { group.addTask { try await store.revokeAPIKey(id: key.id, at: at(baseMillis + Int64(i))) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.compactMap { if case .updated(let k) = $0 { return k } else { return nil } }
            let losers = results.compactMap { if case .conflict(let k) = $0 { return k } else { return nil } }
            #expect(winners.count == 1)
            #expect(losers.count == 7)
            #expect(losers.allSatisfy { $0 == winners.first })
        }
    }

    @Test(arguments: Backend.recordBackends)
    func touchSetsLastUsedAt(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let key = Self.key(f.org.id, prefix: "touch-me")
            let bystander = Self.key(f.org.id, prefix: "bystander")
            try await store.insertAPIKey(key)
            try await store.insertAPIKey(bystander)
            try await store.touchAPIKey(id: key.id, at: at(baseMillis + 5))
            var touched = key
            touched.lastUsedAt = at(baseMillis + 5)
            #expect(try await store.apiKey(id: key.id) == touched)
            try await store.touchAPIKey(id: key.id, at: Date(timeIntervalSince1970: Double(baseMillis + 7) / 1000 + 0.0009))
            touched.lastUsedAt = at(baseMillis + 7)
            #expect(try await store.apiKey(prefix: "touch-me") == touched)
            #expect(try await store.apiKey(id: bystander.id) == bystander)
            // Unknown key: nothing happens, no error.
            try await store.touchAPIKey(id: UUID(), at: at(baseMillis))
            let bad = await storeError { try await store.touchAPIKey(id: key.id, at: Date(timeIntervalSince1970: -1e13)) }
            #expect(bad?.isInvalidArgument == true)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func limitsAtTheEdgeRoundTripAndBeyondAreRefused(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let scope64 = "a" + String(repeating: "z0:_-", count: 12) + "abc"
            let edge = APIKeyRecord(orgID: f.org.id, name: String(repeating: "🚀", count: 200), prefix: String(repeating: "é", count: 32),
                                    keyHash: [UInt8](repeating: 7, count: 512), scopes: (0..<31).map { "s\($0)" } + [scope64], createdAt: at(baseMillis))
            try await store.insertAPIKey(edge)
            #expect(try await store.apiKey(prefix: edge.prefix) == edge)
            let short = Self.key(f.org.id, prefix: "6chars")
            try await store.insertAPIKey(short)
            #expect(try await store.apiKey(prefix: "6chars") == short)

            func with(_ change: (inout APIKeyRecord) -> Void) -> APIKeyRecord {
                var k = Self.key(f.org.id, prefix: "refused")
                change(&k)
                return k
            }
            let cases: [(String, APIKeyRecord)] = [
                ("empty name", with { $0.name = "" }),
                ("name 201", with { $0.name = String(repeating: "n", count: 201) }),
                ("NUL name", with { $0.name = "a\u{0}b" }),
                ("prefix 5", with { $0.prefix = "five5" }),
                ("prefix 33", with { $0.prefix = String(repeating: "p", count: 33) }),
                ("NUL prefix", with { $0.prefix = "refused\u{0}" }),
                ("empty hash", with { $0.keyHash = [] }),
                ("hash 513", with { $0.keyHash = [UInt8](repeating: 1, count: 513) }),
                ("33 scopes", with { $0.scopes = (0..<33).map { "s\($0)" } }),
                ("empty scope", with { $0.scopes = [""] }),
                ("scope 65", with { $0.scopes = [scope64 + "x"] }),
                ("upper-case scope", with { $0.scopes = ["Admin"] }),
                ("scope starting with a digit", with { $0.scopes = ["1admin"] }),
                ("scope with space", with { $0.scopes = ["devices read"] }),
                ("scope with dot", with { $0.scopes = ["devices.read"] }),
                ("non-ASCII scope", with { $0.scopes = ["adm\u{0131}n"] }),
                ("NUL scope", with { $0.scopes = ["admin\u{0}"] }),
                ("date out of range", with { $0.expiresAt = Date(timeIntervalSince1970: 1e12) }),
            ]
            for (what, key) in cases {
                let e = await storeError { try await store.insertAPIKey(key) }
                #expect(e?.isInvalidArgument == true, "\(what): \(String(describing: e))")
            }
            #expect(try await store.apiKeys(orgID: f.org.id, limit: 100).map(\.id) == [edge.id, short.id].sorted { $0.uuidString.lowercased() < $1.uuidString.lowercased() })
        }
    }

    /// An independent client (psql) reads what our PostgreSQL store wrote: the text[] of scopes,
    /// the bytea hash, a NULL org.
    @Test
    func psqlReadsTheAPIKeyThePostgresStoreWrote() async throws {
        try await withPostgresRecordStore { store, psql in
            let f = try await RecordFixture.make(store)
            let key = APIKeyRecord(orgID: f.org.id, name: "it's \"quoted\"", prefix: "PSQLprefix01", keyHash: [0, 0xab, 0xff, 0],
                                   scopes: ["admin", "devices:read"], createdAt: at(baseMillis))
            try await store.insertAPIKey(key)
            try await store.insertAPIKey(Self.key(nil, prefix: "hubwide-1"))
            try await store.touchAPIKey(id: key.id, at: at(baseMillis + 1))
            _ = try await store.revokeAPIKey(id: key.id, at: at(baseMillis + 2))
            let id = key.id.uuidString.lowercased()
            let row = "SELECT %@ FROM devicehub.api_keys WHERE id = '\(id)'"
            func column(_ expression: String) throws -> String { try psql(row.replacingOccurrences(of: "%@", with: expression)) }
            #expect(try column("array_to_string(scopes, '|') || ' ' || cardinality(scopes)") == "admin|devices:read 2")
            #expect(try column("encode(key_hash, 'hex')") == "00abff00")
            #expect(try column("name") == "it's \"quoted\"")
            #expect(try column("prefix || ' ' || org_id") == "PSQLprefix01 \(f.org.id.uuidString.lowercased())")
            #expect(try column("to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || ' ' || to_char(revoked_at AT TIME ZONE 'UTC', 'SS.MS')")
                    == "2024-05-01T12:00:00.001 00.002")
            #expect(try psql("SELECT prefix || ' ' || (org_id IS NULL) FROM devicehub.api_keys WHERE prefix <> 'PSQLprefix01'") == "hubwide-1 true")
        }
    }
}
