import Foundation
import HubHTTP
import HubStore
import Logging

/// Orgs and their members. Methods throw `Problem` for what the caller got wrong (400, 404,
/// 409) and let `StoreError` through for store failures (the server edge answers 503).
/// Who may call what is the HTTP layer's decision; `requireRole` is its helper.
public struct OrgService: Sendable {
    let records: any RecordStore
    let audit: AuditLog

    public init(stores: Stores, logger: Logger) {
        self.records = stores.records
        self.audit = AuditLog(records: stores.records, logger: logger)
    }

    /// Creates an org. `slug` defaults to one derived from `name` (`slug(from:)`); a given
    /// slug must match `^[a-z0-9][a-z0-9-]{0,62}$` (400 otherwise). A taken slug is 409
    /// `conflict`. Audited (`org.create`).
    public func createOrg(name: String, slug: String? = nil, by caller: Caller) async throws -> Org {
        let name = try InputRules.name(name)
        let slug = try slug.map { (s: String) throws(Problem) -> String in
            guard Self.isValidSlug(s) else { throw .invalidArgument("slug must match ^[a-z0-9][a-z0-9-]{0,62}$") }
            return s
        } ?? Self.slug(from: name)
        let org = Org(name: name, slug: slug, createdAt: .storeNow())
        do {
            try await records.insertOrg(org)
        } catch {
            // (A `catch .conflict` clause here crashes Swift 6.3.1's SIL ownership verifier.)
            if case .conflict = error { throw Problem.conflict("an org with slug \"\(slug)\" already exists") }
            throw error
        }
        try await audit.record(.orgCreate, by: caller, orgID: org.id, target: .org(org.id), detail: ["slug": slug])
        return org
    }

    /// The org, or 404.
    public func org(id: UUID) async throws -> Org {
        guard let org = try await records.org(id: id) else { throw Problem.notFound("no such org") }
        return org
    }

    /// Adds `userID` to the org with `role`, or changes its role. 404 when the org does not
    /// exist. Audited (`member.set`).
    public func setMember(orgID: UUID, userID: UUID, role: MemberRole, by caller: Caller) async throws -> Membership {
        _ = try await org(id: orgID)
        let membership = Membership(orgID: orgID, userID: userID, role: role)
        try await records.setMember(membership)
        try await audit.record(.memberSet, by: caller, orgID: orgID, target: .member(userID), detail: ["role": role.rawValue])
        return membership
    }

    /// Removes the member; 404 when there was no such member (or org). Audited (`member.remove`).
    public func removeMember(orgID: UUID, userID: UUID, by caller: Caller) async throws {
        guard try await records.removeMember(orgID: orgID, userID: userID) else { throw Problem.notFound("no such member") }
        try await audit.record(.memberRemove, by: caller, orgID: orgID, target: .member(userID))
    }

    /// The org's members by user id; 404 when the org does not exist.
    public func members(orgID: UUID) async throws -> [Membership] {
        _ = try await org(id: orgID)
        return try await records.members(orgID: orgID)
    }

    /// The user's memberships by org id (empty for a user of no org).
    public func memberships(userID: UUID) async throws(StoreError) -> [Membership] {
        try await records.memberships(userID: userID)
    }

    /// The user's membership in the org when its role is at least `minimum`. Not a member:
    /// 404 (the same answer as a missing org, so ids of other orgs cannot be probed); a lower
    /// role: 403 `forbidden`.
    public func requireRole(userID: UUID, orgID: UUID, atLeast minimum: MemberRole) async throws -> Membership {
        guard let membership = try await records.memberships(userID: userID).first(where: { $0.orgID == orgID }) else {
            throw Problem.notFound("no such org")
        }
        guard membership.role >= minimum else {
            throw Problem.forbidden("this needs the \(minimum.rawValue) role or higher; yours is \(membership.role.rawValue)")
        }
        return membership
    }

    // MARK: slugs

    /// `^[a-z0-9][a-z0-9-]{0,62}$`
    public static func isValidSlug(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (1...63).contains(bytes.count), isSlugAlphanumeric(bytes[0]) else { return false }
        return bytes.allSatisfy { isSlugAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// A slug for `name`: diacritics folded (`Café` → `cafe`), lower-cased, every run of other
    /// characters a single `-`, no dash at either end, at most 63 characters. A name with no
    /// letter or digit in it (`日本`) gets `org-` and 8 random symbols.
    public static func slug(from name: String) -> String {
        let folded = name.folding(options: [.diacriticInsensitive, .caseInsensitive, .widthInsensitive], locale: nil).lowercased()
        var out = [UInt8]()
        var pendingDash = false
        for byte in folded.utf8 {
            if isSlugAlphanumeric(byte) {
                let dash = pendingDash && !out.isEmpty
                if out.count + (dash ? 2 : 1) > 63 { break }
                if dash { out.append(UInt8(ascii: "-")) }
                pendingDash = false
                out.append(byte)
            } else {
                pendingDash = true
            }
        }
        while out.last == UInt8(ascii: "-") { out.removeLast() }
        if out.isEmpty {
            let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
            return "org-" + String(decoding: SecureRandom.bytes(8).map { alphabet[Int($0 & 31)] }, as: UTF8.self)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isSlugAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
