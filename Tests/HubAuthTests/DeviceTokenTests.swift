import Foundation
import HubHTTP
import HubStore
import Testing
@testable import HubAuth

@Suite struct DeviceTokenTests {
    @Test(arguments: Backend.allCases)
    func authenticateAndValidate(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let device = try await h.activeDevice()
            let grant = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret,
                                                         by: .device(device.deviceID, ip: "203.0.113.10"))
            #expect(grant.expiresIn == 3600)
            #expect(grant.token.count == 43)
            #expect(grant.deviceID == device.deviceID && grant.orgID == h.org.id)
            #expect(try await h.devices.validateToken(grant.token) == DevicePrincipal(deviceID: device.deviceID, orgID: h.org.id))
            // Lower-case ids are ids too.
            _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString.lowercased(), secret: device.deviceSecret, by: .anonymous(ip: "203.0.113.10"))

            // The store holds the token's hash, never the token.
            let key = "devtok:" + HubCrypto.hex(HubCrypto.sha256(grant.token))
            let entry = try #require(try await h.stores.keyValue.get(key))
            #expect(!String(decoding: entry, as: UTF8.self).contains(grant.token))
            let decoded = try #require(DeviceTokenEntry(bytes: entry))
            #expect(decoded == DeviceTokenEntry(deviceID: device.deviceID, orgID: h.org.id, gen: 0))

            for junk in ["", "x", grant.token + "x", String(grant.token.dropLast()) + "!", DeviceToken.random().text] {
                await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(junk) }
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func everyAuthenticationFailureIsTheSame401AndAudited(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let device = try await h.activeDevice()
            let provisioned = try await h.devices.provision(orgID: h.org.id, name: "not yet", by: h.admin)
            let caller = Caller.anonymous(ip: "203.0.113.30")
            var bodies = Set<[UInt8]>()
            for (id, secret) in [(device.deviceID.uuidString, DeviceSecret.random().text),          // wrong secret
                                 (device.deviceID.uuidString, String(device.deviceSecret.dropLast())), // truncated secret
                                 (UUID().uuidString, device.deviceSecret),                           // unknown device
                                 ("not-a-uuid", device.deviceSecret),                                // malformed id
                                 (String(repeating: "a", count: 10_000), device.deviceSecret),       // oversized id
                                 (provisioned.device.id.uuidString, device.deviceSecret)] {          // never registered
                if let problem = await expectProblem(401, "unauthenticated", {
                    _ = try await h.devices.authenticate(deviceID: id, secret: secret, by: caller)
                }) { bodies.insert(problem.jsonBytes()) }
            }
            #expect(bodies.count == 1)
            let failures = try await h.audit().filter { $0.action == "device.auth_failed" }
            #expect(failures.map { canonicalReason($0.detail) } == ["bad_secret", "bad_secret", "unknown_device", "malformed_id", "malformed_id", "device_provisioned"])
            #expect(failures[0].orgID == h.org.id && failures[0].targetID == device.deviceID.uuidString.lowercased())
            #expect(failures.allSatisfy { $0.ip == "203.0.113.30" && $0.outcome == .denied })
        }
    }

    @Test(arguments: Backend.allCases)
    func authenticationFailuresAreRateLimitedPerDeviceAndPerIP(_ backend: Backend) async throws {
        try await withServices(backend, configure: { $0.rateLimits.failedAttemptsPerDevice = .perMinute(3) }) { h in
            let device = try await h.activeDevice()
            for i in 0..<3 {
                await expectProblem(401, "unauthenticated") {
                    _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: DeviceSecret.random().text, by: .anonymous(ip: "192.0.2.\(i)"))
                }
            }
            // The device's budget is spent: even its right secret, from a fresh address, waits.
            let limited = await expectProblem(429, "rate_limited") {
                _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous(ip: "192.0.2.50"))
            }
            #expect((1...120).contains(limited?.retryAfterSeconds ?? 0))
            // Another device is not affected.
            let other = try await h.activeDevice(name: "other")
            _ = try await h.devices.authenticate(deviceID: other.deviceID.uuidString, secret: other.deviceSecret, by: .anonymous(ip: "192.0.2.50"))
        }
        try await withServices(backend, configure: { $0.rateLimits.failedAttemptsPerIP = .perMinute(2) }) { h in
            let device = try await h.activeDevice()
            for _ in 0..<2 {
                await expectProblem(401, "unauthenticated") {
                    _ = try await h.devices.authenticate(deviceID: UUID().uuidString, secret: "x", by: .anonymous(ip: "2001:db8:5:5::1"))
                }
            }
            // Same /64, other address: the same budget.
            await expectProblem(429, "rate_limited") {
                _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous(ip: "2001:db8:5:5::2"))
            }
            _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous(ip: "2001:db8:5:6::1"))
        }
    }

    @Test(arguments: Backend.allCases)
    func disableRevokesTokensAndEnableDoesNotRestoreThem(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let device = try await h.activeDevice()
            let other = try await h.activeDevice(name: "bystander")
            let token = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous()).token
            let bystanderToken = try await h.devices.authenticate(deviceID: other.deviceID.uuidString, secret: other.deviceSecret, by: .anonymous()).token
            #expect(try await h.devices.validateToken(token).deviceID == device.deviceID)

            let disabled = try await h.devices.disable(deviceID: device.deviceID, by: h.admin)
            #expect(disabled.state == .disabled && disabled.orgID == h.org.id)
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(token) }
            await expectProblem(401, "unauthenticated") {
                _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous())
            }
            #expect(try await h.devices.validateToken(bystanderToken).deviceID == other.deviceID)
            await expectProblem(409, "conflict") { _ = try await h.devices.disable(deviceID: device.deviceID, by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.devices.disable(deviceID: UUID(), by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.devices.disable(deviceID: other.deviceID, orgID: UUID(), by: h.admin) }

            let enabled = try await h.devices.enable(deviceID: device.deviceID, by: h.admin)
            #expect(enabled.state == .active)
            await expectProblem(409, "conflict") { _ = try await h.devices.enable(deviceID: device.deviceID, by: h.admin) }
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(token) }
            let fresh = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous()).token
            #expect(try await h.devices.validateToken(fresh).deviceID == device.deviceID)

            // A provisioned device goes back to provisioned.
            let unregistered = try await h.devices.provision(orgID: h.org.id, name: "fresh", by: h.admin)
            _ = try await h.devices.disable(deviceID: unregistered.device.id, by: h.admin)
            #expect(try await h.devices.enable(deviceID: unregistered.device.id, by: h.admin).state == .provisioned)

            let actions = try await h.auditActions().filter { $0 == "device.disable" || $0 == "device.enable" }
            #expect(actions == ["device.disable", "device.enable", "device.disable", "device.enable"])
        }
    }

    @Test(arguments: Backend.allCases)
    func rotateReplacesTheSecretAndRevokesTokens(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let device = try await h.activeDevice()
            let token = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous()).token
            let rotated = try await h.devices.rotateSecret(deviceID: device.deviceID, by: h.admin)
            #expect(rotated.deviceSecret != device.deviceSecret && rotated.deviceSecret.count == 43)
            #expect(rotated.device.state == .active)
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(token) }
            await expectProblem(401, "unauthenticated") {
                _ = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous())
            }
            let fresh = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: rotated.deviceSecret, by: .anonymous()).token
            #expect(try await h.devices.validateToken(fresh).deviceID == device.deviceID)

            let unregistered = try await h.devices.provision(orgID: h.org.id, name: "no secret", by: h.admin)
            await expectProblem(409, "conflict") { _ = try await h.devices.rotateSecret(deviceID: unregistered.device.id, by: h.admin) }
            #expect(try await h.auditActions().filter { $0 == "device.rotate_secret" }.count == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func revokeAllTokensUsesFreshGenerationsAndFailsClosed(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let device = try await h.activeDevice()
            let auth = { try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous()).token }
            let first = try await auth()
            try await h.devices.revokeAllTokens(deviceID: device.deviceID)
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(first) }
            let second = try await auth()
            #expect(try await h.devices.validateToken(second).deviceID == device.deviceID)
            let gen = try await h.devices.currentGeneration(device.deviceID)
            #expect(gen != 0)
            try await h.devices.revokeAllTokens(deviceID: device.deviceID)
            #expect(try await h.devices.currentGeneration(device.deviceID) != gen)
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(second) }
            // A revoked token's entry is dropped on its next use.
            #expect(try await h.stores.keyValue.get(DeviceToken(presented: second)!.storeKey) == nil)

            // An unreadable generation counts as "revoked", not as 0.
            let third = try await auth()
            try await h.stores.keyValue.set(DeviceIdentityService.generationKey(device.deviceID), Array("garbage".utf8), ttl: nil)
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(third) }
        }
    }

    @Test(arguments: Backend.allCases)
    func tokensSlideWhileUsedAndExpireWhenIdle(_ backend: Backend) async throws {
        try await withServices(backend, configure: { $0.deviceTokenTTL = .milliseconds(1_500) }) { h in
            let device = try await h.activeDevice()
            // Each use pushes the expiry to 1.5 s from then: three uses 0.7 s apart outlive the
            // first TTL. A stall longer than the slack proves nothing, so the run is repeated.
            var checked = false
            for _ in 0..<4 where !checked {
                let grant = try await h.devices.authenticate(deviceID: device.deviceID.uuidString, secret: device.deviceSecret, by: .anonymous())
                #expect(grant.expiresIn == 2)
                var last = ContinuousClock.now
                var stalled = false
                for _ in 0..<3 {
                    try await Task.sleep(for: .milliseconds(700))
                    let principal = try? await h.devices.validateToken(grant.token)
                    if ContinuousClock.now - last > .milliseconds(1_300) { stalled = true; break }
                    #expect(principal?.deviceID == device.deviceID)
                    last = ContinuousClock.now
                }
                if stalled { continue }
                // The entry's TTL was just reset to (about) the full 1.5 s.
                let key = DeviceToken(presented: grant.token)!.storeKey
                let ttl = try await h.stores.keyValue.timeToLive(key)
                if ContinuousClock.now - last > .milliseconds(400) { continue }
                guard case .after(let ms) = ttl else { Issue.record("token entry has no TTL: \(String(describing: ttl))"); break }
                #expect(ms > 1_000 && ms <= 1_500)
                // Idle past the TTL: gone.
                try await Task.sleep(for: .milliseconds(1_700))
                await expectProblem(401, "unauthenticated") { _ = try await h.devices.validateToken(grant.token) }
                checked = true
            }
            #expect(checked, "every attempt stalled")
        }
    }
}
