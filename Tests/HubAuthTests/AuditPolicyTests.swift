import Foundation
import HubHTTP
import HubSQLite
import HubStore
import Testing
@testable import HubAuth

/// What a failed audit write does (see `AuditLog`): operator changes fail with the store
/// error, credential failures keep their 401. The audit table is made to refuse inserts with a
/// SQLite trigger, so that everything else in the store keeps working.
@Suite struct AuditPolicyTests {
    func withBrokenAudit(_ body: (ServiceHarness, ProvisionedDevice) async throws -> Void) async throws {
        try await AuthTestEnvironment.withSQLite { database in
            let stores = Stores.embedded(database: database)
            let identity = Identity(stores: stores, configuration: IdentityConfiguration(hashKey: testHashKey), logger: quietLogger)
            let org = try await identity.orgs.createOrg(name: "Audited", by: .adminToken())
            let harness = ServiceHarness(stores: stores, identity: identity, org: org)
            let provisioned = try await harness.devices.provision(orgID: org.id, name: "before", by: harness.admin)
            try await database.executeScript("""
                CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit refused'); END;
                """)
            // The trigger works: a direct append fails.
            await #expect(throws: StoreError.self) { try await stores.records.appendAudit(AuditEntry(actorType: .system, action: "probe")) }
            try await body(harness, provisioned)
        }
    }

    @Test func credentialFailuresStay401WhenTheAuditWriteFails() async throws {
        try await withBrokenAudit { h, _ in
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.register(code: ActivationCodeText.random().display, by: .anonymous(ip: "203.0.113.1")) }
            await expectProblem(401, "unauthenticated") { _ = try await h.devices.authenticate(deviceID: UUID().uuidString, secret: "x", by: .anonymous(ip: "203.0.113.1")) }
        }
    }

    @Test func aRegistrationSucceedsWhenItsAuditWriteFails() async throws {
        try await withBrokenAudit { h, provisioned in
            // The secret cannot be shown again, so an audit hiccup must not throw it away.
            let registered = try await h.devices.register(code: provisioned.activationCode, by: .anonymous(ip: "203.0.113.1"))
            #expect(try await h.stores.records.device(id: registered.deviceID)?.state == .active)
        }
    }

    @Test func operatorChangesFailWhenTheirAuditWriteFails() async throws {
        try await withBrokenAudit { h, provisioned in
            await #expect(throws: StoreError.self) { _ = try await h.devices.provision(orgID: h.org.id, name: "x", by: h.admin) }
            await #expect(throws: StoreError.self) { _ = try await h.orgs.createOrg(name: "Unaudited", by: h.admin) }
            await #expect(throws: StoreError.self) { _ = try await h.orgs.setMember(orgID: h.org.id, userID: UUID(), role: .viewer, by: h.admin) }
            await #expect(throws: StoreError.self) { _ = try await h.devices.disable(deviceID: provisioned.device.id, by: h.admin) }
        }
    }
}
