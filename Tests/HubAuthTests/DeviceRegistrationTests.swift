import Foundation
import HubHTTP
import HubStore
import Synchronization
import Testing
@testable import HubAuth

@Suite struct DeviceRegistrationTests {
    @Test(arguments: Backend.allCases)
    func provisionThenRegister(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let before = Date()
            let provisioned = try await h.devices.provision(orgID: h.org.id, name: "  Boiler 1 ", by: h.admin)
            #expect(provisioned.device.state == .provisioned)
            #expect(provisioned.device.name == "Boiler 1")
            #expect(provisioned.device.orgID == h.org.id)
            #expect(ActivationCodeText(parsing: provisioned.activationCode)?.display == provisioned.activationCode)
            let lifetime = provisioned.expiresAt.timeIntervalSince(before)
            #expect(lifetime > 86_399 && lifetime < 86_460)
            #expect(try await h.stores.records.device(id: provisioned.device.id) == provisioned.device)

            // Typed sloppily: lower case, spaces instead of dashes.
            let sloppy = provisioned.activationCode.lowercased().replacingOccurrences(of: "-", with: " ")
            let registered = try await h.devices.register(code: sloppy, name: "Boiler One", agentVersion: "1.4.2",
                                                          by: .anonymous(ip: "203.0.113.5"))
            #expect(registered.deviceID == provisioned.device.id)
            #expect(registered.orgID == h.org.id)
            #expect(registered.deviceSecret.count == 43)
            let stored = try #require(try await h.stores.records.device(id: registered.deviceID))
            #expect(stored.state == .active)
            #expect(stored.name == "Boiler One")
            #expect(stored.agentVersion == "1.4.2")
            #expect(stored.secretHash == HubCrypto.sha256(registered.deviceSecret))

            let audit = try await h.audit()
            #expect(audit.map(\.action) == ["org.create", "device.provision", "device.register"])
            #expect(audit[1].orgID == h.org.id && audit[1].targetID == provisioned.device.id.uuidString.lowercased())
            #expect(audit[2].actorType == .device && audit[2].ip == "203.0.113.5")
            // Neither the code nor the secret reaches the audit trail.
            for entry in audit {
                #expect(!entry.detail.contains(ActivationCodeText(parsing: provisioned.activationCode)!.normalized))
                #expect(!entry.detail.contains(registered.deviceSecret))
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func provisioningChecksItsInputs(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            await expectProblem(404, "not_found") { _ = try await h.devices.provision(orgID: UUID(), name: "x", by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.devices.provision(orgID: h.org.id, name: "", by: h.admin) }
            await expectProblem(400, "invalid_argument") {
                _ = try await h.devices.provision(orgID: h.org.id, name: String(repeating: "d", count: 201), by: h.admin)
            }
            let provisioned = try await h.devices.provision(orgID: h.org.id, name: "ok", by: h.admin)
            // Bad optional inputs are 400 and leave the code unused.
            await expectProblem(400, "invalid_argument") {
                _ = try await h.devices.register(code: provisioned.activationCode, agentVersion: "has space", by: .anonymous(ip: "203.0.113.1"))
            }
            await expectProblem(400, "invalid_argument") {
                _ = try await h.devices.register(code: provisioned.activationCode, name: "\n", by: .anonymous(ip: "203.0.113.1"))
            }
            _ = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "203.0.113.1"))
        }
    }

    /// Every way a registration can fail gives the same answer, and each is audited.
    @Test(arguments: Backend.allCases)
    func everyFailureIsTheSame401(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let caller = Caller.anonymous(ip: "203.0.113.20")
            var bodies = Set<[UInt8]>()
            func fails(_ code: String, _ what: Comment) async {
                if let problem = await expectProblem(401, "unauthenticated", { _ = try await h.devices.register(code: code, by: caller) }) {
                    bodies.insert(problem.jsonBytes())
                }
            }
            await fails("not a code", "malformed")
            await fails(ActivationCodeText.random().display, "unknown")

            let used = try await h.devices.provision(orgID: h.org.id, name: "used", by: h.admin)
            _ = try await h.devices.register(code: used.activationCode, by: caller)
            await fails(used.activationCode, "already used")

            // An expired code, written directly with a past expiry.
            let stale = try await h.devices.provision(orgID: h.org.id, name: "stale", by: h.admin)
            let expiredCode = ActivationCodeText.random()
            try await h.stores.records.insertActivationCode(HubStore.ActivationCode(
                orgID: h.org.id, deviceID: stale.device.id, codeHash: expiredCode.keyedHash(testHashKey),
                expiresAt: Date().addingTimeInterval(-60), createdAt: Date().addingTimeInterval(-120)))
            await fails(expiredCode.display, "expired")
            // ... which also retired the device's earlier code (one live code per device).
            await fails(stale.activationCode, "replaced")

            // The device was disabled before it registered: the code is spent, the answer the same.
            let disabled = try await h.devices.provision(orgID: h.org.id, name: "disabled", by: h.admin)
            _ = try await h.devices.disable(deviceID: disabled.device.id, by: h.admin)
            await fails(disabled.activationCode, "device disabled")
            #expect(try await h.stores.records.device(id: disabled.device.id)?.state == .disabled)

            // A code hashed under another key is not ours.
            let other = try await h.devices.provision(orgID: h.org.id, name: "other", by: h.admin)
            let otherKey = try HashKey(text: String(repeating: "o", count: 40))
            let foreign = ActivationCodeText.random()
            try await h.stores.records.insertActivationCode(HubStore.ActivationCode(
                orgID: h.org.id, deviceID: other.device.id, codeHash: foreign.keyedHash(otherKey), expiresAt: Date().addingTimeInterval(600)))
            await fails(foreign.display, "hashed under another key")

            #expect(bodies.count == 1)
            let failures = try await h.audit().filter { $0.action == "device.register_failed" }
            #expect(failures.count == 7)
            #expect(failures.allSatisfy { $0.outcome == .denied && $0.ip == "203.0.113.20" })
            let reasons = failures.map { canonicalReason($0.detail) }
            #expect(reasons == ["malformed_code", "unknown_code", "used_code", "expired_code", "used_code", "device_not_provisioned", "unknown_code"])
        }
    }

    @Test(arguments: Backend.allCases)
    func tenConcurrentRegistrationsWithOneCodeHaveOneWinner(_ backend: Backend) async throws {
        // The per-code failure budget (5) would turn late losers into 429s: raise it, so that
        // every loser is a plain 401.
        try await withServices(backend, configure: { $0.rateLimits.failedAttemptsPerActivationCode.limit = 100 }) { h in
            let provisioned = try await h.devices.provision(orgID: h.org.id, name: "race", by: h.admin)
            let outcomes = await withTaskGroup(of: String.self) { group in
                for i in 0..<10 {
                    group.addTask {
                        do {
                            let registered = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "203.0.113.\(i)"))
                            return "won " + registered.deviceSecret
                        } catch let problem as Problem {
                            return "\(problem.status)"
                        } catch {
                            return "error \(error)"
                        }
                    }
                }
                var all: [String] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            let winners = outcomes.filter { $0.hasPrefix("won ") }
            #expect(winners.count == 1)
            #expect(outcomes.filter { $0 == "401" }.count == 9)
            // The winner's secret is the one stored.
            let secret = String(try #require(winners.first).dropFirst(4))
            #expect(try await h.stores.records.device(id: provisioned.device.id)?.secretHash == HubCrypto.sha256(secret))
        }
    }

    @Test(arguments: Backend.allCases)
    func registrationFailuresAreRateLimitedPerIPAndPerCode(_ backend: Backend) async throws {
        try await withServices(backend, configure: { $0.rateLimits.failedAttemptsPerIP = .perMinute(3) }) { h in
            let attacker = Caller.anonymous(ip: "192.0.2.66")
            for _ in 0..<3 {
                await expectProblem(401, "unauthenticated") { _ = try await h.devices.register(code: ActivationCodeText.random().display, by: attacker) }
            }
            // The fourth attempt is refused before the code is looked at, even a valid one.
            let provisioned = try await h.devices.provision(orgID: h.org.id, name: "victim", by: h.admin)
            let limited = await expectProblem(429, "rate_limited") { _ = try await h.devices.register(code: provisioned.activationCode, by: attacker) }
            #expect((1...120).contains(limited?.retryAfterSeconds ?? 0))
            // Another address is not affected, and the code was not used up.
            _ = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "192.0.2.67"))
        }
        try await withServices(backend) { h in
            // Per code: 5 failures in its life (default), whatever the addresses.
            let provisioned = try await h.devices.provision(orgID: h.org.id, name: "spent", by: h.admin)
            _ = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "192.0.2.1"))
            for i in 0..<5 {
                await expectProblem(401, "unauthenticated") { _ = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "192.0.2.\(10 + i)")) }
            }
            let limited = await expectProblem(429, "rate_limited") {
                _ = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "192.0.2.99"))
            }
            #expect((86_000...86_400).contains(limited?.retryAfterSeconds ?? 0))
        }
    }

    @Test(arguments: Backend.allCases)
    func reissuingACodeRetiresTheOldOne(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let first = try await h.devices.provision(orgID: h.org.id, name: "reissue", by: h.admin)
            let second = try await h.devices.reissueActivationCode(deviceID: first.device.id, by: h.admin)
            #expect(second.activationCode != first.activationCode)
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.register(code: first.activationCode, by: .anonymous(ip: "203.0.113.1")) }
            _ = try await h.devices.register(code: second.activationCode, by: .anonymous(ip: "203.0.113.1"))
            await expectProblem(409, "conflict") { _ = try await h.devices.reissueActivationCode(deviceID: first.device.id, by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.devices.reissueActivationCode(deviceID: first.device.id, orgID: UUID(), by: h.admin) }
        }
    }
}

/// The `reason` of an audit detail (jsonb may respace the text).
func canonicalReason(_ detail: String) -> String {
    let object = try? JSONSerialization.jsonObject(with: Data(detail.utf8)) as? [String: Any]
    return object?["reason"] as? String ?? "<none in \(detail)>"
}
