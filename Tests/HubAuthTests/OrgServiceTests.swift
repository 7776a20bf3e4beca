import Foundation
import HubHTTP
import HubStore
import Testing
@testable import HubAuth

@Suite struct OrgServiceTests {
    @Test func slugsAreDerivedFromNames() {
        #expect(OrgService.slug(from: "Acme Robotics") == "acme-robotics")
        #expect(OrgService.slug(from: "  Café  Müller & Söhne!! ") == "cafe-muller-sohne")
        #expect(OrgService.slug(from: "--ACME--") == "acme")
        #expect(OrgService.slug(from: String(repeating: "ab ", count: 40)).count <= 63)
        #expect(OrgService.isValidSlug(OrgService.slug(from: String(repeating: "ab ", count: 40))))
        let fallback = OrgService.slug(from: "日本")
        #expect(fallback.hasPrefix("org-") && fallback.count == 12 && OrgService.isValidSlug(fallback))
        #expect(OrgService.isValidSlug("a"))
        #expect(!OrgService.isValidSlug("-a"))
        #expect(!OrgService.isValidSlug("A"))
        #expect(!OrgService.isValidSlug(String(repeating: "a", count: 64)))
        #expect(!OrgService.isValidSlug(""))
    }

    @Test(arguments: Backend.allCases)
    func createReadAndConflict(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            #expect(h.org.slug == "acme-robotics")
            #expect(try await h.orgs.org(id: h.org.id) == h.org)
            let explicit = try await h.orgs.createOrg(name: "Other", slug: "other-1", by: h.admin)
            #expect(explicit.slug == "other-1")
            await expectProblem(409, "conflict") { _ = try await h.orgs.createOrg(name: "Acme Robotics", by: h.admin) }
            await expectProblem(409, "conflict") { _ = try await h.orgs.createOrg(name: "Another", slug: "other-1", by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.orgs.createOrg(name: "X", slug: "Bad Slug", by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.orgs.createOrg(name: "   ", by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.orgs.createOrg(name: String(repeating: "n", count: 201), by: h.admin) }
            await expectProblem(400, "invalid_argument") { _ = try await h.orgs.createOrg(name: "a\u{0}b", by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.orgs.org(id: UUID()) }
            let creations = try await h.audit().filter { $0.action == "org.create" }
            #expect(creations.map(\.targetID) == [h.org.id.uuidString.lowercased(), explicit.id.uuidString.lowercased()])
            #expect(creations.last?.actorID == "admin-token")
            #expect(creations.last?.requestID == "req-admin")
        }
    }

    @Test(arguments: Backend.allCases)
    func membersAndRoles(_ backend: Backend) async throws {
        try await withServices(backend) { h in
            let alice = UUID(), bob = UUID()
            _ = try await h.orgs.setMember(orgID: h.org.id, userID: alice, role: .viewer, by: h.admin)
            _ = try await h.orgs.setMember(orgID: h.org.id, userID: bob, role: .operator, by: h.admin)
            _ = try await h.orgs.setMember(orgID: h.org.id, userID: alice, role: .admin, by: h.admin)  // role change
            let members = try await h.orgs.members(orgID: h.org.id)
            #expect(Set(members.map { "\($0.userID) \($0.role)" }) == ["\(alice) admin", "\(bob) operator"])
            #expect(try await h.orgs.memberships(userID: alice) == [Membership(orgID: h.org.id, userID: alice, role: .admin)])

            #expect(try await h.orgs.requireRole(userID: bob, orgID: h.org.id, atLeast: .operator).role == .operator)
            await expectProblem(403, "forbidden") { _ = try await h.orgs.requireRole(userID: bob, orgID: h.org.id, atLeast: .approver) }
            await expectProblem(404, "not_found") { _ = try await h.orgs.requireRole(userID: UUID(), orgID: h.org.id, atLeast: .viewer) }

            try await h.orgs.removeMember(orgID: h.org.id, userID: bob, by: h.admin)
            await expectProblem(404, "not_found") { try await h.orgs.removeMember(orgID: h.org.id, userID: bob, by: h.admin) }
            #expect(try await h.orgs.members(orgID: h.org.id).map(\.userID) == [alice])
            await expectProblem(404, "not_found") { _ = try await h.orgs.setMember(orgID: UUID(), userID: alice, role: .viewer, by: h.admin) }
            await expectProblem(404, "not_found") { _ = try await h.orgs.members(orgID: UUID()) }
            #expect(try await h.auditActions() == ["org.create", "member.set", "member.set", "member.set", "member.remove"])
        }
    }
}
