import Foundation
import HubAuth
import HubCommands
import HubHTTP
import HubStore

/// Diagnostic sessions and the commands proposed into them (customer API). Every record is
/// checked against the caller's orgs (`ctx.authorize`): outside them, 404 with the body of a
/// missing record. Users act by role (viewer reads, operator opens/closes/proposes/cancels,
/// approver decides); API keys by scope (`sessions:read`, `sessions:write`,
/// `commands:propose`) and never approve: approvals are made by people.
enum SessionEndpoints {
    static let read = RouteGuard.customer(scope: "sessions:read")
    static let write = RouteGuard.customer(scope: "sessions:write")
    static let propose = RouteGuard.customer(scope: "commands:propose")
    /// No key is meant to hold it: the service refuses non-users anyway.
    static let decide = RouteGuard.customer(scope: "approvals:write")
    static let maxPage = 200

    static func install(on app: HTTPApplication, layer: CommandsLayer) {
        struct Open: Decodable { var device_id: String; var reason: String }
        app.route(.post, "/api/v1/customer/sessions", guard: write) { _, ctx in
            let body = try ctx.json(Open.self)
            guard let deviceID = UUID(uuidString: body.device_id), let device = try await layer.context.records.device(id: deviceID) else {
                throw Problem.noSuch("device")
            }
            try ctx.authorize(org: device.orgID, role: .operator, what: "device")
            let session = try await layer.sessions.open(device: device, reason: body.reason, by: ctx.caller)
            return .json(SessionBody(session), status: 201)
        }

        app.route(.get, "/api/v1/customer/sessions", guard: read) { _, ctx in
            guard let rawOrg = ctx.query("org_id") else { throw Problem.invalidArgument("org_id is required") }
            guard let orgID = UUID(uuidString: rawOrg) else { throw Problem.noSuch("org") }
            try ctx.authorize(org: orgID, role: .viewer, what: "org")
            let states = try ctx.stateList(SessionState.self)
            var deviceID: UUID?
            if let raw = ctx.query("device_id") {
                guard let id = UUID(uuidString: raw) else { throw Problem.invalidArgument("device_id must be a UUID") }
                deviceID = id
            }
            let limit = try ctx.pageLimit(max: maxPage)
            let before = try ctx.query("cursor").flatMap { $0.isEmpty ? nil : $0 }.map { raw throws(Problem) -> (createdAt: Date, id: UUID) in
                guard let c = SessionCursor(text: raw) else { throw Problem.invalidArgument("cursor is not one this hub issued") }
                return (Date(timeIntervalSince1970: Double(c.createdAtMillis) / 1000), c.id)
            }
            let sessions = try await layer.context.records.sessions(orgID: orgID, states: states, deviceID: deviceID, before: before, limit: limit)
            let next = sessions.count == limit ? sessions.last.map { SessionCursor($0).text } : nil
            return .json(Page(items: sessions.map(SessionBody.init), next_cursor: next))
        }

        app.route(.get, "/api/v1/customer/sessions/:id", guard: read) { _, ctx in
            .json(SessionBody(try await visibleSession(ctx, layer, role: .viewer)))
        }

        struct Decision: Decodable { var note: String? }
        app.route(.post, "/api/v1/customer/sessions/:id/approve", guard: decide) { _, ctx in
            let session = try await visibleSession(ctx, layer, role: .approver)
            let note = try ctx.optionalJSON(Decision.self)?.note
            let org = try await layer.org(session.orgID, on: ctx.loop)
            return .json(SessionBody(try await layer.sessions.approve(session, org: org, note: note, by: ctx.caller)))
        }
        app.route(.post, "/api/v1/customer/sessions/:id/reject", guard: decide) { _, ctx in
            let session = try await visibleSession(ctx, layer, role: .approver)
            let note = try ctx.optionalJSON(Decision.self)?.note
            let org = try await layer.org(session.orgID, on: ctx.loop)
            return .json(SessionBody(try await layer.sessions.reject(session, org: org, note: note, by: ctx.caller)))
        }
        app.route(.post, "/api/v1/customer/sessions/:id/close", guard: write) { _, ctx in
            let session = try await visibleSession(ctx, layer, role: .operator)
            return .json(SessionBody(try await layer.sessions.close(session, by: ctx.caller, commands: layer.commands)))
        }

        app.route(.post, "/api/v1/customer/sessions/:id/commands", guard: propose) { _, ctx in
            let session = try await visibleSession(ctx, layer, role: .operator)
            let body = try ctx.json(ProposeBody.self)
            let proposal = try body.proposal(layer.context.configuration)
            let org = try await layer.org(session.orgID, on: ctx.loop)
            let (command, replayed) = try await layer.commands.propose(proposal, in: session, org: org, by: ctx.caller)
            var r = Response.json(CommandBody(command), status: replayed ? 200 : 201)
            if replayed { r.headers.add(name: "Idempotent-Replayed", value: "true") }
            return r
        }

        app.route(.get, "/api/v1/customer/sessions/:id/commands", guard: read) { _, ctx in
            let session = try await visibleSession(ctx, layer, role: .viewer)
            let states = try ctx.stateList(CommandState.self)
            let limit = try ctx.pageLimit(max: maxPage)
            var after: Int64 = 0
            if let raw = ctx.query("cursor"), !raw.isEmpty {
                guard let text = Base64URLCursor.decode(raw), let seq = Int64(text), seq >= 0 else {
                    throw Problem.invalidArgument("cursor is not one this hub issued")
                }
                after = seq
            }
            let commands = try await layer.commands.list(sessionID: session.id, states: states, afterSeq: after, limit: limit)
            let next = commands.count == limit ? commands.last.map { Base64URLCursor.encode(String($0.seq)) } : nil
            return .json(Page(items: commands.map(CommandBody.init), next_cursor: next))
        }
    }

    /// The session named by `:id` if the caller may act on it with `role`; 404 otherwise.
    static func visibleSession(_ ctx: RequestContext, _ layer: CommandsLayer, role: MemberRole) async throws -> DiagnosticSession {
        let id = try ctx.uuidParam("id", what: "session")
        guard let session = try await layer.context.records.session(id: id) else { throw Problem.noSuch("session") }
        try ctx.authorize(org: session.orgID, role: role, what: "session")
        return session
    }
}

/// `POST /sessions/:id/commands`.
struct ProposeBody: Decodable {
    var kind: String
    var args: JSONValue
    var priority: String?
    var ttl_seconds: Int?
    var max_attempts: Int?
    var visibility_timeout_seconds: Int?
    var idempotency_key: String?

    func proposal(_ configuration: CommandsConfiguration) throws -> Proposal {
        guard let arguments = try args.objectText() else { throw Problem.invalidArgument("args must be a JSON object") }
        var priority = QueuePriority.default
        if let raw = self.priority {
            guard let p = QueuePriority(rawValue: raw) else { throw Problem.invalidArgument("priority must be critical, default or bulk") }
            priority = p
        }
        return Proposal(kind: kind, arguments: arguments, priority: priority, ttlSeconds: ttl_seconds ?? configuration.defaultTTLSeconds,
                        maxAttempts: max_attempts ?? configuration.defaultMaxAttempts,
                        visibilityTimeoutSeconds: visibility_timeout_seconds ?? configuration.defaultVisibilityTimeoutSeconds,
                        idempotencyKey: idempotency_key)
    }
}

extension RequestContext {
    /// `?state=a,b` as a set of states (nil when absent); an unknown name is 400.
    func stateList<S: RawRepresentable & Hashable>(_ type: S.Type) throws(Problem) -> Set<S>? where S.RawValue == String {
        guard let raw = query("state"), !raw.isEmpty else { return nil }
        var out = Set<S>()
        for part in raw.split(separator: ",").prefix(16) {
            guard let s = S(rawValue: String(part)) else { throw Problem.invalidArgument("state has an unknown value \"\(part.prefix(64))\"") }
            out.insert(s)
        }
        return out
    }

    /// `?limit=` in 1...max (default 50).
    func pageLimit(max: Int) throws(Problem) -> Int {
        guard let raw = query("limit") else { return 50 }
        guard let n = Int(raw), (1...max).contains(n) else { throw Problem.invalidArgument("limit must be 1...\(max)") }
        return n
    }

    /// A JSON body that may be absent (empty): nil then.
    func optionalJSON<T: Decodable>(_ type: T.Type) throws(Problem) -> T? {
        request.body.isEmpty ? nil : try json(type)
    }
}
