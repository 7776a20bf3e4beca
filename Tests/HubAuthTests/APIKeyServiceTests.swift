import Foundation
import HubHTTP
import HubStore
import Testing
@testable import HubAuth

@Suite struct APIKeyServiceTests {
    @Test(arguments: Backend.allCases)
    func createAuthenticateListRevoke(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let created = try await h.apiKeys.create(orgID: h.org.id, name: " CI deploy ", scopes: ["devices:read", "devices:write", "devices:read"],
                                                     expiresInDays: 30, by: h.admin)
            #expect(created.record.name == "CI deploy")
            #expect(created.record.scopes == ["devices:read", "devices:write"])
            #expect(created.key.hasPrefix("dhk_" + created.record.prefix + "_"))
            #expect(created.record.keyHash == HubCrypto.sha256(APIKeyText(parsing: created.key)!.secret))
            let days = created.record.expiresAt!.timeIntervalSince(created.record.createdAt) / 86_400
            #expect(abs(days - 30) < 0.001)
            #expect(try await h.stores.records.apiKey(id: created.record.id) == created.record)

            let principal = try await h.apiKeys.authenticate(created.key, by: .anonymous(ip: "203.0.113.9"))
            #expect(principal == APIKeyPrincipal(keyID: created.record.id, orgID: h.org.id, scopes: ["devices:read", "devices:write"]))
            #expect(principal.has(.devicesWrite) && !principal.has(.admin))
            #expect(try await h.stores.records.apiKey(id: created.record.id)?.lastUsedAt != nil)

            let hubWide = try await h.apiKeys.create(orgID: nil, name: "root", scopes: ["admin"], by: h.admin)
            #expect(try await h.apiKeys.authenticate(hubWide.key, by: .anonymous()).orgID == nil)
            #expect(try await h.apiKeys.list(orgID: h.org.id).map(\.id) == [created.record.id])
            #expect(try await h.apiKeys.list(orgID: nil).map(\.id) == [hubWide.record.id])

            let revoked = try await h.apiKeys.revoke(id: created.record.id, by: h.admin)
            #expect(revoked.revokedAt != nil)
            await expectProblem(401, "unauthenticated") { _ = try await h.apiKeys.authenticate(created.key, by: .anonymous()) }
            await expectProblem(409, "conflict") { _ = try await h.apiKeys.revoke(id: created.record.id, by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.apiKeys.revoke(id: UUID(), by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.apiKeys.revoke(id: hubWide.record.id, orgID: h.org.id, by: h.admin) }
            #expect(try await h.auditActions().filter { $0.hasPrefix("api_key.") } == ["api_key.create", "api_key.create", "api_key.revoke", "api_key.auth_failed"])
        }
    }

    @Test(arguments: Backend.allCases)
    func creationChecksItsInputs(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            await expectProblem(400, "invalid_argument") { _ = try await h.apiKeys.create(orgID: nil, name: "n", scopes: ["devices:read"], by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.apiKeys.create(orgID: h.org.id, name: "n", scopes: [], by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.apiKeys.create(orgID: h.org.id, name: "n", scopes: ["root"], by: h.admin) }
            await expectProblem(400, "invalid_argument") {
                _ = try await h.apiKeys.create(orgID: h.org.id, name: "n", scopes: Array(repeating: "admin", count: 11), by: h.admin)
            }
            await expectProblem(400, "invalid_argument") { _ = try await h.apiKeys.create(orgID: h.org.id, name: "", scopes: ["admin"], by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.apiKeys.create(orgID: h.org.id, name: "n", scopes: ["admin"], expiresInDays: 0, by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.apiKeys.create(orgID: h.org.id, name: "n", scopes: ["admin"], expiresInDays: 3651, by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.apiKeys.create(orgID: UUID(), name: "n", scopes: ["admin"], by: h.admin) }
            let keys = try await h.apiKeys.list(orgID: h.org.id)
            #expect(keys.isEmpty)
        }
    }

    /// Unknown prefix, wrong secret, malformed, revoked, expired: one 401, audited with the reason.
    @Test(arguments: Backend.allCases)
    func everyAuthenticationFailureIsTheSame401(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let good = try await h.apiKeys.create(orgID: h.org.id, name: "good", scopes: ["devices:read"], by: h.admin)
            let prefix = APIKeyText(parsing: good.key)!.prefix
            // An expired key, written directly with a past expiry.
            let stale = APIKeyText.random()
            try await h.stores.records.insertAPIKey(APIKeyRecord(
                id: UUID(), orgID: h.org.id, name: "stale", prefix: stale.prefix, keyHash: stale.storedHash, scopes: ["devices:read"],
                expiresAt: Date().addingTimeInterval(-60), revokedAt: nil, lastUsedAt: nil, createdBy: nil, createdAt: Date().addingTimeInterval(-120)))
            let revoked = try await h.apiKeys.create(orgID: h.org.id, name: "revoked", scopes: ["devices:read"], by: h.admin)
            _ = try await h.apiKeys.revoke(id: revoked.record.id, by: h.admin)

            var bodies = Set<[UInt8]>()
            for presented in ["dhk_nonsense", APIKeyText.random().text, "dhk_\(prefix)_" + APIKeyText.random().secret, stale.text, revoked.key] {
                if let problem = await expectProblem(401, "unauthenticated", { _ = try await h.apiKeys.authenticate(presented, by: .anonymous(ip: "203.0.113.77")) }) {
                    bodies.insert(problem.jsonBytes())
                }
            }
            #expect(bodies.count == 1)
            let failures = try await h.audit().filter { $0.action == "api_key.auth_failed" }
            #expect(failures.map { canonicalReason($0.detail) } == ["malformed", "unknown_prefix", "bad_secret", "expired", "revoked"])
            #expect(failures.allSatisfy { $0.ip == "203.0.113.77" && $0.outcome == .denied })
            #expect(failures[2].targetID == good.record.id.uuidString.lowercased())
            // Nothing of a presented secret reaches the trail.
            #expect(failures.allSatisfy { !$0.detail.contains(APIKeyText(parsing: good.key)!.secret) })
        }
    }

    @Test(arguments: Backend.allCases)
    func failuresAreRateLimitedPerIP(_ backend: Backend) async throws {
        try await withServices(backend, configure: { $0.rateLimits.failedAttemptsPerIP = .perMinute(2) }) { h in
            let good = try await h.apiKeys.create(orgID: h.org.id, name: "good", scopes: ["devices:read"], by: h.admin)
            for _ in 0..<2 {
                await expectProblem(401, "unauthenticated") { _ = try await h.apiKeys.authenticate(APIKeyText.random().text, by: .anonymous(ip: "192.0.2.3")) }
            }
            let limited = await expectProblem(429, "rate_limited") { _ = try await h.apiKeys.authenticate(good.key, by: .anonymous(ip: "192.0.2.3")) }
            #expect((1...120).contains(limited?.retryAfterSeconds ?? 0))
            _ = try await h.apiKeys.authenticate(good.key, by: .anonymous(ip: "192.0.2.4"))
        }
    }

    @Test func lastUsedIsWrittenAtMostOncePerInterval() {
        let throttle = APIKeyTouchThrottle(interval: .seconds(60))
        let id = UUID(), other = UUID()
        let t0 = ContinuousClock.now
        #expect(throttle.shouldTouch(id, now: t0))
        #expect(!throttle.shouldTouch(id, now: t0 + .seconds(59)))
        #expect(throttle.shouldTouch(other, now: t0 + .seconds(59)))
        #expect(throttle.shouldTouch(id, now: t0 + .seconds(60)))
        #expect(!throttle.shouldTouch(id, now: t0 + .seconds(61)))
    }

    @Test(arguments: Backend.allCases)
    func lastUsedIsNotRewrittenOnEveryRequest(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let created = try await h.apiKeys.create(orgID: h.org.id, name: "busy", scopes: ["devices:read"], by: h.admin)
            _ = try await h.apiKeys.authenticate(created.key, by: .anonymous())
            let first = try #require(try await h.stores.records.apiKey(id: created.record.id)?.lastUsedAt)
            try await Task.sleep(for: .milliseconds(20))
            _ = try await h.apiKeys.authenticate(created.key, by: .anonymous())
            #expect(try await h.stores.records.apiKey(id: created.record.id)?.lastUsedAt == first)
        }
    }
}
