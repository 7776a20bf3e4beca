import Foundation
import HubAuth
import HubCommands
import HubHTTP
import HubStore

/// One command by id (customer API): get, approve, reject, cancel; the queue metrics; and the
/// org policy in the admin API (which kinds run without their own approval, four eyes).
enum CommandEndpoints {
    static func install(on app: HTTPApplication, layer: CommandsLayer, identity: IdentityLayer) {
        app.route(.get, "/api/v1/customer/commands/:id", guard: SessionEndpoints.read) { _, ctx in
            .json(CommandBody(try await visibleCommand(ctx, layer, role: .viewer)))
        }

        struct Decision: Decodable { var note: String? }
        app.route(.post, "/api/v1/customer/commands/:id/approve", guard: SessionEndpoints.decide) { _, ctx in
            let command = try await visibleCommand(ctx, layer, role: .approver)
            let note = try ctx.optionalJSON(Decision.self)?.note
            let org = try await layer.org(command.orgID, on: ctx.loop)
            return .json(CommandBody(try await layer.commands.approve(command, org: org, note: note, by: ctx.caller)))
        }
        app.route(.post, "/api/v1/customer/commands/:id/reject", guard: SessionEndpoints.decide) { _, ctx in
            let command = try await visibleCommand(ctx, layer, role: .approver)
            let note = try ctx.optionalJSON(Decision.self)?.note
            let org = try await layer.org(command.orgID, on: ctx.loop)
            return .json(CommandBody(try await layer.commands.reject(command, org: org, note: note, by: ctx.caller)))
        }
        app.route(.post, "/api/v1/customer/commands/:id/cancel", guard: SessionEndpoints.propose) { _, ctx in
            let command = try await visibleCommand(ctx, layer, role: .operator)
            return .json(CommandBody(try await layer.commands.cancel(command, by: ctx.caller)))
        }

        // Depth by org, state and priority, with the oldest command's age: customers see their
        // orgs (one with `org_id`), the hub's operator any org or all.
        app.route(.get, "/api/v1/queue/metrics", guard: RouteGuard(accepts: [.user, .apiKey, .admin], scope: "devices:read")) { _, ctx in
            var orgIDs: [UUID]?
            if let raw = ctx.query("org_id") {
                guard let id = UUID(uuidString: raw) else { throw Problem.noSuch("org") }
                if case .admin = ctx.principal {} else { try ctx.authorize(org: id, role: .viewer, what: "org") }
                orgIDs = [id]
            } else {
                switch ctx.principal {
                case .admin: orgIDs = nil
                case .user(let user): orgIDs = Array(user.roles.keys)
                case .apiKey(let key): orgIDs = key.orgID.map { [$0] } ?? []
                default: orgIDs = []
                }
            }
            let now = Date()
            let rows = orgIDs?.isEmpty == true ? [] : try await layer.context.records.queueDepth(orgIDs: orgIDs, now: now)
            struct Row: Encodable { var org_id: String; var state: String; var priority: String; var count: Int; var oldest_age_seconds: Double }
            return .json(Items(items: rows.map {
                Row(org_id: $0.orgID.wire, state: $0.state.rawValue, priority: $0.priority.rawValue, count: $0.count,
                    oldest_age_seconds: max(0, (now.timeIntervalSince($0.oldestCreatedAt) * 1000).rounded() / 1000))
            }))
        }

        struct Policy: Decodable { var require_distinct_approver: Bool?; var auto_approved_kinds: [String]? }
        app.route(.patch, "/api/v1/admin/orgs/:org_id", guard: .admin) { _, ctx in
            let orgID = try ctx.uuidParam("org_id", what: "org")
            let body = try ctx.json(Policy.self)
            if let kinds = body.auto_approved_kinds {
                guard kinds.count <= 100 else { throw Problem.invalidArgument("auto_approved_kinds has at most 100 kinds") }
                for kind in kinds where !Proposal.isValidKind(kind) {
                    throw Problem.invalidArgument("auto_approved_kinds: \"\(kind.prefix(64))\" does not match ^[a-z][a-z0-9_.-]{0,63}$")
                }
            }
            guard let org = try await layer.context.records.updateOrgPolicy(
                id: orgID, requireDistinctApprover: body.require_distinct_approver,
                autoApprovedKinds: body.auto_approved_kinds.map { Array(Set($0)).sorted() }, at: Date()) else { throw Problem.noSuch("org") }
            layer.forgetOrg(orgID)
            try await identity.audit.record(.orgPolicy, by: ctx.caller, orgID: orgID, target: .org(orgID), detail: [
                "require_distinct_approver": String(org.requireDistinctApprover), "auto_approved_kinds": org.autoApprovedKinds.joined(separator: ","),
            ])
            return .json(OrgBody(org))
        }
    }

    /// The command named by `:id` if the caller may act on it with `role`; 404 otherwise.
    static func visibleCommand(_ ctx: RequestContext, _ layer: CommandsLayer, role: MemberRole) async throws -> CommandRecord {
        let id = try ctx.uuidParam("id", what: "command")
        guard let command = try await layer.context.records.command(id: id) else { throw Problem.noSuch("command") }
        try ctx.authorize(org: command.orgID, role: role, what: "command")
        return command
    }
}
