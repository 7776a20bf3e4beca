import Foundation
import HubHTTP
import HubStore
import Testing
@testable import HubAuth

/// The identity services on fresh stores of one backend, with an org to work in.
struct ServiceHarness {
    let stores: Stores
    let identity: Identity
    let org: Org
    /// An operator acting through the admin token.
    let admin = Caller.adminToken(ip: "198.51.100.1", requestID: "req-admin")

    var orgs: OrgService { identity.orgs }
    var devices: DeviceIdentityService { identity.devices }
    var apiKeys: APIKeyService { identity.apiKeys }

    /// Audit entries (all orgs), oldest first.
    func audit() async throws -> [AuditEntry] {
        try await stores.records.audit(orgID: nil, beforeID: nil, limit: 1_000).reversed()
    }

    /// The actions of the audit trail, oldest first.
    func auditActions() async throws -> [String] { try await audit().map(\.action) }

    /// A device that has registered: its id and secret.
    func activeDevice(name: String = "sensor", ip: String = "203.0.113.10") async throws -> RegisteredDevice {
        let provisioned = try await devices.provision(orgID: org.id, name: name, by: admin)
        return try await devices.register(code: provisioned.activationCode, by: .anonymous(ip: ip))
    }
}

func withServices<T>(_ backend: Backend, configure: (inout IdentityConfiguration) -> Void = { _ in },
                     _ body: (ServiceHarness) async throws -> T) async throws -> T {
    try await AuthTestEnvironment.withStores(backend) { stores in
        var configuration = IdentityConfiguration(hashKey: testHashKey)
        configure(&configuration)
        let identity = Identity(stores: stores, configuration: configuration, logger: quietLogger)
        let org = try await identity.orgs.createOrg(name: "Acme Robotics", by: .adminToken())
        return try await body(ServiceHarness(stores: stores, identity: identity, org: org))
    }
}

/// Runs `body` and checks that it throws a `Problem` with this status and code; returns it.
@discardableResult
func expectProblem(_ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation,
                   _ body: () async throws -> Void) async -> Problem? {
    do {
        try await body()
        Issue.record("expected \(status) \(code); the call succeeded", sourceLocation: sourceLocation)
    } catch let problem as Problem {
        #expect(problem.status == status, "status", sourceLocation: sourceLocation)
        #expect(problem.code == code, "code", sourceLocation: sourceLocation)
        return problem
    } catch {
        Issue.record("expected \(status) \(code); got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
