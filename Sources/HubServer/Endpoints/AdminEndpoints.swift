import Foundation
import HubAuth
import HubHTTP
import HubStore

/// The admin API: orgs, members and API keys, behind `--admin-token` or an API key with
/// scope `admin`. `hubctl` is its client.
enum AdminEndpoints {
    static func install(on app: HTTPApplication, identity layer: IdentityLayer) {
        struct CreateOrg: Decodable { var name: String; var slug: String? }
        app.route(.post, "/api/v1/admin/orgs", guard: .admin) { _, ctx in
            let body = try ctx.json(CreateOrg.self)
            let org = try await layer.identity.orgs.createOrg(name: body.name, slug: body.slug, by: ctx.caller)
            return .json(OrgBody(org), status: 201)
        }
        app.route(.get, "/api/v1/admin/orgs/:org_id", guard: .admin) { _, ctx in
            let org = try await layer.identity.orgs.org(id: try ctx.uuidParam("org_id", what: "org"))
            return .json(OrgBody(org))
        }

        struct SetMember: Decodable { var user_id: String; var role: String }
        app.route(.post, "/api/v1/admin/orgs/:org_id/members", guard: .admin) { _, ctx in
            let orgID = try ctx.uuidParam("org_id", what: "org")
            let body = try ctx.json(SetMember.self)
            guard let userID = UUID(uuidString: body.user_id) else { throw Problem.invalidArgument("user_id must be a UUID (the Supabase user id)") }
            guard let role = MemberRole(rawValue: body.role) else { throw Problem.invalidArgument("role must be one of viewer, operator, approver, admin") }
            let membership = try await layer.identity.orgs.setMember(orgID: orgID, userID: userID, role: role, by: ctx.caller)
            layer.forgetUserRoles(userID)
            return .json(MemberBody(membership), status: 201)
        }
        app.route(.get, "/api/v1/admin/orgs/:org_id/members", guard: .admin) { _, ctx in
            let members = try await layer.identity.orgs.members(orgID: try ctx.uuidParam("org_id", what: "org"))
            return .json(Items(items: members.map(MemberBody.init)))
        }
        app.route(.delete, "/api/v1/admin/orgs/:org_id/members/:user_id", guard: .admin) { _, ctx in
            let orgID = try ctx.uuidParam("org_id", what: "org")
            let userID = try ctx.uuidParam("user_id", what: "member")
            try await layer.identity.orgs.removeMember(orgID: orgID, userID: userID, by: ctx.caller)
            layer.forgetUserRoles(userID)
            return Response(status: 204)
        }

        struct CreateKey: Decodable { var org_id: String?; var name: String; var scopes: [String]; var expires_in_days: Int? }
        app.route(.post, "/api/v1/admin/api-keys", guard: .admin) { _, ctx in
            let body = try ctx.json(CreateKey.self)
            var orgID: UUID?
            if let raw = body.org_id {
                guard let id = UUID(uuidString: raw) else { throw Problem.invalidArgument("org_id must be a UUID") }
                orgID = id
            }
            // An admin key administers the whole hub, so it belongs to no org; an org's key
            // must never reach other orgs.
            if body.scopes.contains("admin"), orgID != nil { throw Problem.invalidArgument("the admin scope is only for hub-wide keys (org_id null)") }
            let created = try await layer.identity.apiKeys.create(orgID: orgID, name: body.name, scopes: body.scopes,
                                                                  expiresInDays: body.expires_in_days, by: ctx.caller)
            var r = Response.json(APIKeyBody(created.record, key: created.key), status: 201)
            r.headers.add(name: "Cache-Control", value: "no-store")
            return r
        }
        app.route(.get, "/api/v1/admin/api-keys", guard: .admin) { _, ctx in
            var orgID: UUID?
            if let raw = ctx.query("org_id") {
                guard let id = UUID(uuidString: raw) else { throw Problem.invalidArgument("org_id must be a UUID") }
                orgID = id
            }
            let keys = try await layer.identity.apiKeys.list(orgID: orgID)
            return .json(Items(items: keys.map { APIKeyBody($0) }))
        }
        app.route(.post, "/api/v1/admin/api-keys/:id/revoke", guard: .admin) { _, ctx in
            let key = try await layer.identity.apiKeys.revoke(id: try ctx.uuidParam("id", what: "API key"), by: ctx.caller)
            layer.forgetAPIKey(key.id)
            return .json(APIKeyBody(key))
        }
    }
}
