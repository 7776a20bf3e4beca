import Foundation
import HubAuth
import HubHTTP
import HubStore

/// The customer API for orgs and devices. Every record is checked against the caller's orgs
/// through `RequestContext.authorize`: outside them, 404 with the body of a missing record.
/// Users act by role (viewer reads, operator changes); API keys by scope (`devices:read`,
/// `devices:write`).
enum CustomerEndpoints {
    static let read = RouteGuard.customer(scope: "devices:read")
    static let write = RouteGuard.customer(scope: "devices:write")
    /// Largest page of the device list.
    static let maxPage = 200

    static func install(on app: HTTPApplication, identity layer: IdentityLayer, presence: DevicePresence) {
        app.route(.get, "/api/v1/customer/orgs", guard: read) { _, ctx in
            struct OrgItem: Encodable { var id: String; var name: String; var role: String }
            let items: [OrgItem]
            switch ctx.principal {
            case .user(let user):
                let orgs = try await layer.stores.records.orgs(ids: Array(user.roles.keys))
                items = orgs.map { OrgItem(id: $0.id.wire, name: $0.name, role: user.roles[$0.id]?.rawValue ?? "viewer") }
            case .apiKey(let key):
                let orgs = try await layer.stores.records.orgs(ids: key.orgID.map { [$0] } ?? [])
                items = orgs.map { OrgItem(id: $0.id.wire, name: $0.name, role: "api_key") }
            default:
                items = []
            }
            return .json(Items(items: items))
        }

        struct Provision: Decodable { var org_id: String; var name: String }
        app.route(.post, "/api/v1/customer/devices/provision", guard: write) { _, ctx in
            let body = try ctx.json(Provision.self)
            guard let orgID = UUID(uuidString: body.org_id) else { throw Problem.noSuch("org") }
            try ctx.authorize(org: orgID, role: .operator, what: "org")
            let provisioned = try await layer.identity.devices.provision(orgID: orgID, name: body.name, by: ctx.caller)
            struct Body: Encodable { var device_id: String; var activation_code: String; var expires_at: String? }
            var r = Response.json(Body(device_id: provisioned.device.id.wire, activation_code: provisioned.activationCode,
                                       expires_at: WireTime.format(provisioned.expiresAt)), status: 201)
            r.headers.add(name: "Cache-Control", value: "no-store")
            return r
        }

        app.route(.get, "/api/v1/customer/devices", guard: read) { _, ctx in
            guard let rawOrg = ctx.query("org_id") else { throw Problem.invalidArgument("org_id is required") }
            guard let orgID = UUID(uuidString: rawOrg) else { throw Problem.noSuch("org") }
            try ctx.authorize(org: orgID, role: .viewer, what: "org")
            var state: DeviceState?
            if let raw = ctx.query("state") {
                guard let s = DeviceState(rawValue: raw) else { throw Problem.invalidArgument("state must be provisioned, active or disabled") }
                state = s
            }
            var online: Bool?
            if let raw = ctx.query("online") {
                guard raw == "true" || raw == "false" else { throw Problem.invalidArgument("online must be true or false") }
                online = raw == "true"
            }
            var limit = 50
            if let raw = ctx.query("limit") {
                guard let n = Int(raw), (1...maxPage).contains(n) else { throw Problem.invalidArgument("limit must be 1...\(maxPage)") }
                limit = n
            }
            // An empty cursor is the first page, like no cursor.
            let after = try ctx.query("cursor").flatMap { $0.isEmpty ? nil : $0 }.map { raw throws(Problem) -> (name: String, id: UUID) in
                guard let c = DeviceCursor(text: raw) else { throw Problem.invalidArgument("cursor is not one this hub issued") }
                return (c.name, c.id)
            }
            let devices = try await layer.stores.records.devices(orgID: orgID, state: state, after: after, limit: limit)
            var items: [DeviceBody] = []
            for device in devices {
                let isOnline = try await presence.isOnline(device.id)
                if let online, online != isOnline { continue }
                items.append(DeviceBody(device, online: isOnline))
            }
            // A full page may have more after it; the cursor is the last device read (the
            // `online` filter applies after paging, so a page can have fewer items than `limit`).
            let next = devices.count == limit ? devices.last.map { DeviceCursor(name: $0.name, id: $0.id).text } : nil
            return .json(Page(items: items, next_cursor: next))
        }

        app.route(.get, "/api/v1/customer/devices/:id", guard: read) { _, ctx in
            let device = try await visibleDevice(ctx, layer, role: .viewer)
            return .json(DeviceBody(device, online: try await presence.isOnline(device.id)))
        }

        app.route(.get, "/api/v1/customer/devices/:id/status", guard: read) { _, ctx in
            let device = try await visibleDevice(ctx, layer, role: .viewer)
            struct Status: NullEncodingBody {
                var device_id: String; var online: Bool; var state: String; var last_seen_at: String?; var agent_version: String?
                enum Keys: String, CodingKey { case device_id, online, state, last_seen_at, agent_version }
                func encodeFields(_ c: inout KeyedEncodingContainer<Keys>) throws {
                    try c.encode(device_id, forKey: .device_id); try c.encode(online, forKey: .online); try c.encode(state, forKey: .state)
                    try c.encode(last_seen_at, forKey: .last_seen_at); try c.encode(agent_version, forKey: .agent_version)
                }
            }
            return .json(Status(device_id: device.id.wire, online: try await presence.isOnline(device.id), state: device.state.rawValue,
                                last_seen_at: WireTime.format(device.lastSeenAt), agent_version: device.agentVersion))
        }

        app.route(.post, "/api/v1/customer/devices/:id/disable", guard: write) { _, ctx in
            let device = try await visibleDevice(ctx, layer, role: .operator)
            let disabled = try await layer.identity.devices.disable(deviceID: device.id, orgID: device.orgID, by: ctx.caller)
            await layer.closeDeviceSockets(device.id, reason: "device disabled")
            return .json(DeviceBody(disabled, online: false))
        }

        app.route(.post, "/api/v1/customer/devices/:id/enable", guard: write) { _, ctx in
            let device = try await visibleDevice(ctx, layer, role: .operator)
            let enabled = try await layer.identity.devices.enable(deviceID: device.id, orgID: device.orgID, by: ctx.caller)
            return .json(DeviceBody(enabled, online: try await presence.isOnline(device.id)))
        }

        app.route(.post, "/api/v1/customer/devices/:id/rotate-secret", guard: write) { _, ctx in
            let device = try await visibleDevice(ctx, layer, role: .operator)
            let rotated = try await layer.identity.devices.rotateSecret(deviceID: device.id, orgID: device.orgID, by: ctx.caller)
            await layer.closeDeviceSockets(device.id, reason: "device secret rotated")
            struct Body: Encodable { var device_id: String; var device_secret: String }
            var r = Response.json(Body(device_id: device.id.wire, device_secret: rotated.deviceSecret))
            r.headers.add(name: "Cache-Control", value: "no-store")
            return r
        }

        // A fresh activation code for a device that has not registered yet (the first one was
        // lost or expired); the previous live code stops working.
        app.route(.post, "/api/v1/customer/devices/:id/activation-code", guard: write) { _, ctx in
            let device = try await visibleDevice(ctx, layer, role: .operator)
            let provisioned = try await layer.identity.devices.reissueActivationCode(deviceID: device.id, orgID: device.orgID, by: ctx.caller)
            struct Body: Encodable { var device_id: String; var activation_code: String; var expires_at: String? }
            var r = Response.json(Body(device_id: device.id.wire, activation_code: provisioned.activationCode,
                                       expires_at: WireTime.format(provisioned.expiresAt)), status: 201)
            r.headers.add(name: "Cache-Control", value: "no-store")
            return r
        }

        app.route(.get, "/api/v1/customer/system", guard: read) { _, ctx in
            struct System: Encodable {
                var version: String; var git_commit: String; var store: String; var time: String?
                var supabase_jwt: Bool; var node_devices_connected: Int
            }
            return .json(System(version: BuildInfo.version, git_commit: BuildInfo.gitCommit,
                                store: layer.config.redisURL == nil ? "embedded" : "redis+postgres",
                                time: WireTime.format(Date()), supabase_jwt: layer.jwtVerifier != nil,
                                node_devices_connected: await layer.deviceConnections.count()))
        }
    }

    /// The device named by `:id` if the caller may act on it with `role`; 404 otherwise, the
    /// same for a missing device and one of another org.
    static func visibleDevice(_ ctx: RequestContext, _ layer: IdentityLayer, role: MemberRole) async throws -> Device {
        let id = try ctx.uuidParam("id", what: "device")
        guard let device = try await layer.stores.records.device(id: id) else { throw Problem.noSuch("device") }
        try ctx.authorize(org: device.orgID, role: role, what: "device")
        return device
    }
}

/// The device list's cursor: the last device of a page (name and id), base64url JSON. Opaque
/// to clients; a forged one can only move the starting point inside the caller's own org.
struct DeviceCursor: Codable {
    var name: String
    var id: UUID

    init(name: String, id: UUID) {
        self.name = name
        self.id = id
    }

    init?(text: String) {
        guard text.utf8.count <= 1024, let json = Base64URLCursor.decode(text),
              let c = try? JSONDecoder().decode(DeviceCursor.self, from: Data(json.utf8)) else { return nil }
        self = c
    }

    var text: String {
        Base64URLCursor.encode(String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self))
    }
}
