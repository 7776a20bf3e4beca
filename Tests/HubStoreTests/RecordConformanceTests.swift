import Foundation
import HubStore
import Testing

/// `RecordStore` conformance, part 1: orgs, members and the audit trail, on both backends.
@Suite("RecordStore conformance: orgs, members, audit")
struct RecordConformanceTests {
    @Test(arguments: Backend.recordBackends)
    func orgRoundTripsEveryField(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let org = Org(name: "Acme Ünïcødé 🚀", slug: "acme-1", requireDistinctApprover: false,
                          autoApprovedKinds: ["uptime", "df", "it's \"quoted\""], createdAt: at(baseMillis), updatedAt: at(baseMillis + 1))
            try await store.insertOrg(org)
            #expect(try await store.org(id: org.id) == org)
            #expect(try await store.org(slug: "acme-1") == org)
            #expect(try await store.org(slug: "nope") == nil)
            #expect(try await store.org(slug: "NOT A SLUG") == nil)
            #expect(try await store.org(id: UUID()) == nil)
            // Defaults and empty arrays survive too.
            let plain = Org(name: "B", slug: "b", createdAt: at(baseMillis))
            try await store.insertOrg(plain)
            #expect(try await store.org(id: plain.id) == plain)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func updateOrgPolicySetsOnlyTheGivenFields(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let org = Org(name: "Acme", slug: "acme", requireDistinctApprover: true, autoApprovedKinds: ["uptime"], createdAt: at(baseMillis))
            try await store.insertOrg(org)
            var expected = org
            // One field at a time; updatedAt moves with each write (kept to the millisecond).
            expected.requireDistinctApprover = false
            expected.updatedAt = at(baseMillis + 1)
            #expect(try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: false, autoApprovedKinds: nil,
                                                    at: at(baseMillis + 1).addingTimeInterval(0.0004)) == expected)
            expected.autoApprovedKinds = ["df", "uptime", "df.disk-usage_v2"]
            expected.updatedAt = at(baseMillis + 2)
            #expect(try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: nil, autoApprovedKinds: ["df", "uptime", "df.disk-usage_v2"],
                                                    at: at(baseMillis + 2)) == expected)
            #expect(try await store.org(id: org.id) == expected)
            // Both at once, and an empty list clears the kinds.
            expected.requireDistinctApprover = true
            expected.autoApprovedKinds = []
            expected.updatedAt = at(baseMillis + 3)
            #expect(try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: true, autoApprovedKinds: [], at: at(baseMillis + 3)) == expected)
            // Nothing to set: nothing written, the org as it is.
            #expect(try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: nil, autoApprovedKinds: nil, at: at(baseMillis + 4)) == expected)
            #expect(try await store.org(id: org.id) == expected)
            // No such org.
            #expect(try await store.updateOrgPolicy(id: UUID(), requireDistinctApprover: false, autoApprovedKinds: nil, at: at(baseMillis)) == nil)
            #expect(try await store.updateOrgPolicy(id: UUID(), requireDistinctApprover: nil, autoApprovedKinds: nil, at: at(baseMillis)) == nil)
            // Bad kinds are refused, and nothing is written (not even the other field).
            let limit = (0..<StoreLimits.maxBatch).map { "k\($0)" }
            for (what, kinds) in [("empty kind", [""]), ("101 characters", [String(repeating: "k", count: 101)]), ("NUL", ["a\u{0}b"]),
                                  ("too many", limit + ["one-more"])] {
                await expectInvalidArgument("autoApprovedKinds: \(what)") {
                    _ = try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: false, autoApprovedKinds: kinds, at: at(baseMillis + 5))
                }
            }
            await expectInvalidArgument("date out of range") {
                _ = try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: false, autoApprovedKinds: nil, at: Date(timeIntervalSince1970: 1e15))
            }
            #expect(try await store.org(id: org.id) == expected)
            // The most kinds there may be, each as long as it may be.
            expected.autoApprovedKinds = limit.map { _ in String(repeating: "é", count: 100) }
            expected.updatedAt = at(baseMillis + 6)
            #expect(try await store.updateOrgPolicy(id: org.id, requireDistinctApprover: nil, autoApprovedKinds: expected.autoApprovedKinds,
                                                    at: at(baseMillis + 6)) == expected)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func timestampsAreTruncatedToMilliseconds(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let precise = Date(timeIntervalSince1970: Double(baseMillis) / 1000 + 0.123_987)
            let org = Org(name: "T", slug: "t", createdAt: precise)
            try await store.insertOrg(org)
            let read = try #require(try await store.org(id: org.id))
            #expect(read.createdAt == at(baseMillis + 123))
            #expect(read.updatedAt == at(baseMillis + 123))
        }
    }

    @Test(arguments: Backend.recordBackends)
    func duplicateSlugOrIDIsConflict(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let org = Org(name: "A", slug: "dup")
            try await store.insertOrg(org)
            let e1 = await storeError { try await store.insertOrg(Org(name: "B", slug: "dup")) }
            #expect(e1?.isConflict == true, "\(String(describing: e1))")
            let e2 = await storeError { try await store.insertOrg(Org(id: org.id, name: "C", slug: "other")) }
            #expect(e2?.isConflict == true, "\(String(describing: e2))")
            #expect(try await store.org(slug: "other") == nil)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func memberships(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let a = Org(name: "A", slug: "a")
            let b = Org(name: "B", slug: "b")
            try await store.insertOrg(a)
            try await store.insertOrg(b)
            let user = UUID()
            let other = UUID()
            try await store.setMember(Membership(orgID: a.id, userID: user, role: .viewer))
            try await store.setMember(Membership(orgID: b.id, userID: user, role: .admin))
            try await store.setMember(Membership(orgID: a.id, userID: other, role: .approver))
            // Changing a role replaces it.
            try await store.setMember(Membership(orgID: a.id, userID: user, role: .operator))

            let orgsOfUser = try await store.memberships(userID: user)
            let expectedOrder = [a.id, b.id].sorted { $0.uuidString.lowercased() < $1.uuidString.lowercased() }
            #expect(orgsOfUser.map(\.orgID) == expectedOrder)
            #expect(Set(orgsOfUser.map { "\($0.orgID)-\($0.role)" }) == ["\(a.id)-operator", "\(b.id)-admin"])

            let membersOfA = try await store.members(orgID: a.id)
            #expect(membersOfA.map(\.userID) == [user, other].sorted { $0.uuidString.lowercased() < $1.uuidString.lowercased() })
            #expect(membersOfA.first { $0.userID == other }?.role == .approver)

            #expect(try await store.removeMember(orgID: a.id, userID: user))
            #expect(try await store.removeMember(orgID: a.id, userID: user) == false)
            #expect(try await store.memberships(userID: user).map(\.orgID) == [b.id])

            let e = await storeError { try await store.setMember(Membership(orgID: UUID(), userID: user, role: .admin)) }
            #expect(e?.isInvalidArgument == true, "unknown org: \(String(describing: e))")
        }
    }

    @Test(arguments: Backend.recordBackends)
    func orgsByIDInIDOrderLeaveUnknownIDsOut(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            var orgs: [Org] = []
            for i in 0..<5 {
                let o = Org(name: "Org \(i)", slug: "org-\(i)", autoApprovedKinds: ["k\(i)"], createdAt: at(baseMillis + Int64(i)))
                try await store.insertOrg(o)
                orgs.append(o)
            }
            let wanted = [orgs[3], orgs[0], orgs[4]]
            let byID = wanted.sorted { $0.id.uuidString.lowercased() < $1.id.uuidString.lowercased() }
            // Unknown ids are left out, repeated ids count once.
            #expect(try await store.orgs(ids: [wanted[0].id, UUID(), wanted[1].id, wanted[2].id, wanted[0].id, UUID()]) == byID)
            #expect(try await store.orgs(ids: [orgs[2].id]) == [orgs[2]])
            #expect(try await store.orgs(ids: [UUID()]).isEmpty)
            #expect(try await store.orgs(ids: []).isEmpty)
            let tooMany = await storeError { _ = try await store.orgs(ids: (0...StoreLimits.maxBatch).map { _ in UUID() }) }
            #expect(tooMany?.isInvalidArgument == true, "\(String(describing: tooMany))")
        }
    }

    @Test(arguments: Backend.recordBackends)
    func auditNewestFirstWithPaging(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let org = Org(name: "A", slug: "a")
            try await store.insertOrg(org)
            let first = try await store.appendAudit(AuditEntry(at: at(baseMillis), orgID: org.id, actorType: .user, actorID: "u-1",
                                                               action: "session.approve", targetType: "session", targetID: "s-1",
                                                               outcome: .denied, requestID: "req-1", ip: "2001:DB8::1", detail: #"{"why": "four eyes"}"#))
            #expect(first.id > 0)
            #expect(first.ip == "2001:db8::1", "addresses read back in canonical form")
            var ids = [first.id]
            for i in 1..<5 {
                let e = try await store.appendAudit(AuditEntry(at: at(baseMillis + Int64(i)), orgID: org.id, actorType: .system, action: "tick \(i)", ip: "10.0.0.\(i)"))
                #expect(e.id > ids.last!)
                ids.append(e.id)
            }
            let hubWide = try await store.appendAudit(AuditEntry(at: at(baseMillis), actorType: .anonymous, action: "device.auth_failed"))
            #expect(hubWide.orgID == nil)

            let newest = try await store.audit(orgID: org.id, beforeID: nil, limit: 2)
            #expect(newest.map(\.id) == [ids[4], ids[3]])
            let next = try await store.audit(orgID: org.id, beforeID: newest.last?.id, limit: 10)
            #expect(next.map(\.id) == [ids[2], ids[1], ids[0]])
            #expect(next.last?.canonical == AuditEntry(id: ids[0], at: at(baseMillis), orgID: org.id, actorType: .user, actorID: "u-1",
                                                        action: "session.approve", targetType: "session", targetID: "s-1", outcome: .denied,
                                                        requestID: "req-1", ip: "2001:db8::1", detail: #"{"why":"four eyes"}"#).canonical)
            let all = try await store.audit(orgID: nil, beforeID: nil, limit: 100)
            #expect(all.map(\.id) == [hubWide.id] + ids.reversed())
            // limit is clamped to at least 1.
            #expect(try await store.audit(orgID: nil, beforeID: nil, limit: 0).count == 1)

            let bad = await storeError { try await store.appendAudit(AuditEntry(actorType: .user, action: "x", ip: "not-an-ip")) }
            #expect(bad?.isInvalidArgument == true)
            let unknownOrg = await storeError { try await store.appendAudit(AuditEntry(orgID: UUID(), actorType: .user, action: "x")) }
            #expect(unknownOrg?.isInvalidArgument == true)
        }
    }
}
